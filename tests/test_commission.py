"""Multi-level commission through the service layer: pending at payment, available at
settlement, reversed or clawed back on refund, capped by the margin, and every fen of it
matched by the ledger and the audit."""

import threading

import pytest
from selling import card_product

from shop import crypto, invariants, ledger, settings
from shop.accounts import service as accounts
from shop.distribution import commission, rates
from shop.distribution.models import Commission
from shop.ledger.models import Journal
from shop.orders import service as orders
from shop.orders.models import Order
from shop.orders.service import OrderError
from shop.orders.state import StaleOrder
from shop.payments import service as payments


@pytest.fixture(autouse=True)
def keyring():
    crypto.configure(b"k" * 32)


def healthy():
    problems = {k: v for k, v in invariants.run_all().items() if v}
    assert problems == {}


def bal(user, kind) -> int:
    return ledger.balance(ledger.user_account(user.id, kind))


def shop_bal(name) -> int:
    return ledger.balance(ledger.system_account(name))


def chain(wallet: int = 5000):
    """A←B←C←D: A invited B, B invited C, C invited D; D has `wallet` to spend."""
    a = accounts.register("a@example.com", "password-a")
    b = accounts.register("b@example.com", "password-b", referrer_code=a.invite_code)
    c = accounts.register("c@example.com", "password-c", referrer_code=b.invite_code)
    d = accounts.register("d@example.com", "password-d", referrer_code=c.invite_code)
    if wallet:
        payments.credit_wallet(d.id, wallet)
    return a, b, c, d


def buy(user, product, qty=1) -> Order:
    order = orders.place_order(product.id, qty, user=user)
    return orders.pay_with_wallet(order, actor=user)


def rows(order) -> dict[int, tuple[int, int, int, str]]:
    """user id → (depth, rate_bps, amount, status) of the order's commission."""
    found = Commission.select().where(Commission.order == order.id)
    return {r.user_id: (r.depth, r.rate_bps, r.amount, r.status) for r in found}


@pytest.mark.pg
def test_four_deep_chain_pending_available_and_settled_once(database):
    settings.set_value("commission.rates", "10,5,2")
    a, b, c, d = chain()
    order = buy(d, card_product(price=1000, cost=600))
    assert order.status == "delivered"

    assert rows(order) == {
        c.id: (1, 1000, 100, "pending"),
        b.id: (2, 500, 50, "pending"),
        a.id: (3, 200, 20, "pending"),
    }
    assert [bal(u, "commission_pending") for u in (c, b, a)] == [100, 50, 20]
    assert bal(d, "commission_pending") == 0  # the buyer earns nothing on their own order
    assert shop_bal("escrow") == 1000 - 170
    healthy()

    orders.complete(order)
    assert {uid: r[3] for uid, r in rows(order).items()} == dict.fromkeys(
        (a.id, b.id, c.id), "available"
    )
    assert [bal(u, "commission_available") for u in (c, b, a)] == [100, 50, 20]
    assert [bal(u, "commission_pending") for u in (c, b, a)] == [0, 0, 0]
    # invariant 8: cost + commissions + revenue = amount paid
    assert shop_bal("escrow") == 0
    assert shop_bal("cost_of_goods") == 600
    assert shop_bal("revenue") == 1000 - 600 - 170
    healthy()


def test_refund_before_settlement_reverses_pending_commission(database):
    a, b, c, d = chain()
    order = buy(d, card_product(price=1000, cost=600))
    orders.refund(order, "The key did not work")

    assert {r[3] for r in rows(order).values()} == {"reversed"}
    assert [bal(u, "commission_pending") for u in (c, b, a)] == [0, 0, 0]
    assert bal(d, "wallet") == 5000
    assert shop_bal("escrow") == 0
    kinds = [
        j.kind for j in Journal.select().where(Journal.ref == order.order_no).order_by(Journal.id)
    ]
    assert kinds == ["order.pay", "commission.pending", "commission.reverse", "order.refund"]
    healthy()


def test_refund_after_settlement_claws_back_and_records_debt(database):
    a, b, c, d = chain()
    product = card_product(price=1000, cost=600)
    order = buy(d, product)
    orders.complete(order)
    # C moves their commission on (as a move to the wallet would): it cannot be clawed back
    ledger.transfer(
        ledger.user_account(c.id, "commission_available"),
        ledger.user_account(c.id, "wallet"),
        100,
        "commission.to_wallet",
    )
    orders.refund(Order.get_by_id(order.id), "Charged back by the bank")

    assert {uid: (r[3]) for uid, r in rows(order).items()} == dict.fromkeys(
        (a.id, b.id, c.id), "clawed_back"
    )
    debts = {r.user_id: r.debt for r in Commission.select().where(Commission.order == order.id)}
    assert debts == {c.id: 100, b.id: 0, a.id: 0}
    assert [bal(u, "commission_available") for u in (c, b, a)] == [0, 0, 0]
    assert commission.owed(c.id) == 100 and commission.owed(b.id) == 0
    assert bal(d, "wallet") == 5000  # the buyer has the whole amount back
    assert (shop_bal("escrow"), shop_bal("revenue"), shop_bal("cost_of_goods")) == (0, 0, 0)
    healthy()

    # C's next commission first repays the debt; only the rest becomes available
    second = buy(d, product, qty=2)  # 20.00 → C earns 2.00 at depth 1
    orders.complete(second)
    mine = Commission.get((Commission.order == second.id) & (Commission.user == c.id))
    assert (mine.amount, mine.netted, mine.status) == (200, 100, "available")
    assert bal(c, "commission_available") == 100
    assert commission.owed(c.id) == 0
    healthy()


def test_rates_beyond_the_margin_are_scaled_down_in_proportion(database):
    settings.set_value("commission.rates", "30,20,10")
    a, b, c, d = chain()
    order = buy(d, card_product(price=1000, cost=900))  # margin 100, rates ask for 600
    amounts = {uid: r[2] for uid, r in rows(order).items()}
    assert amounts == {c.id: 50, b.id: 33, a.id: 16}  # 300:200:100 scaled to 100, floored
    assert sum(amounts.values()) <= 100
    orders.complete(order)
    assert shop_bal("revenue") == 100 - 99 and shop_bal("revenue") >= 0
    healthy()


def test_no_margin_means_no_commission(database):
    a, b, c, d = chain()
    order = buy(d, card_product(price=1000, cost=1000))
    assert rows(order) == {}
    orders.complete(order)
    healthy()


def test_product_rates_and_level_hook_override_the_shop_rates(database, monkeypatch):
    a, b, c, d = chain()
    product = card_product(price=1000, cost=0)
    rates.set_product_rates(product, "20, 2.5", actor=None)
    monkeypatch.setattr(rates, "_LEVEL_RATES", [])

    @rates.level_rate
    def agents_earn_more(order, beneficiary, depth, rate_bps):
        return rate_bps + 500 if beneficiary.id == b.id else None

    order = buy(d, product)
    assert rows(order) == {c.id: (1, 2000, 200, "pending"), b.id: (2, 750, 75, "pending")}
    rates.set_product_rates(product, "", actor=None)
    assert rates.depth_rates(product.id) == [1000, 500, 200]
    healthy()


def test_staff_and_owner_earn_nothing_and_their_level_stays_with_the_shop(database):
    a, b, c, d = chain()
    accounts.set_role(c, "staff", actor=None)
    accounts.set_role(a, "owner", actor=None)
    order = buy(d, card_product(price=1000, cost=600))
    assert rows(order) == {b.id: (2, 500, 50, "pending")}
    healthy()


def test_a_guest_order_with_a_referral_credits_the_chain(database):
    a, b, c, _ = chain(wallet=0)
    order = orders.place_order(
        card_product().id,
        1,
        contact="guest@example.com",
        query_password="pw-1234",
        referrer_id=c.id,
    )
    payments.record_payment("sandbox", "t-guest", order.order_no, order.amount)
    assert rows(order) == {
        c.id: (1, 1000, 100, "pending"),
        b.id: (2, 500, 50, "pending"),
        a.id: (3, 200, 20, "pending"),
    }
    healthy()


def test_a_referrer_buying_as_a_guest_through_their_own_link_earns_nothing(database):
    a, b, c, _ = chain(wallet=0)
    order = orders.place_order(
        card_product().id, 1, contact="C@example.com", query_password="pw-1234", referrer_id=c.id
    )
    payments.record_payment("sandbox", "t-self", order.order_no, order.amount)
    assert rows(order) == {b.id: (2, 500, 50, "pending"), a.id: (3, 200, 20, "pending")}
    healthy()


@pytest.mark.pg
def test_concurrent_settlements_of_one_order_settle_it_once(database):
    a, b, c, d = chain()
    order = buy(d, card_product(price=1000, cost=600))
    barrier = threading.Barrier(4)
    outcomes = []

    def settle():
        database.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=30)
            orders.complete(Order.get_by_id(order.id))
            outcomes.append("settled")
        except (OrderError, StaleOrder) as exc:
            outcomes.append(type(exc).__name__)
        finally:
            database.close()

    threads = [threading.Thread(target=settle) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count("settled") == 1 and len(outcomes) == 4, outcomes
    assert Journal.select().where(Journal.kind == "commission.release").count() == 1
    assert [bal(u, "commission_available") for u in (c, b, a)] == [100, 50, 20]
    assert shop_bal("revenue") == 230
    healthy()
