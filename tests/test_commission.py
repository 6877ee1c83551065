"""Multi-level commission through the service layer: pending at payment, available at
settlement, reversed or clawed back on refund, capped by the margin, and every fen of it
matched by the ledger and the audit."""

import threading
from datetime import timedelta

import pytest
from selling import card_product

from shop import crypto, invariants, ledger, settings
from shop.accounts import service as accounts
from shop.distribution import chart, commission, rates
from shop.distribution.models import Commission
from shop.ledger.models import Journal
from shop.orders import service as orders
from shop.orders.models import Order
from shop.orders.service import OrderError
from shop.orders.state import StaleOrder
from shop.payments import service as payments
from shop.settings import SettingError
from shop.settings import service as settings_cache


@pytest.fixture(autouse=True)
def keyring():
    crypto.configure(b"k" * 32)
    settings_cache.invalidate()  # a setting cached from an earlier test's database must not leak


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
    assert settings.get("commission.rates") == "10,5,2"  # the default
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


def test_a_disabled_account_earns_nothing(database):
    a, b, c, d = chain()
    c.is_active = False
    c.save()
    order = buy(d, card_product(price=1000, cost=600))
    assert rows(order) == {b.id: (2, 500, 50, "pending"), a.id: (3, 200, 20, "pending")}


def test_a_held_order_released_by_staff_creates_commission_once(database, monkeypatch):
    from shop import plugins

    a, b, c, d = chain()
    product = card_product(price=1000, cost=600)
    real_fire = plugins.fire
    monkeypatch.setattr(
        plugins,
        "fire",
        lambda hook, **kw: ["review"] if hook == "risk_check" else real_fire(hook, **kw),
    )
    order = buy(d, product)
    assert order.status == "held" and len(rows(order)) == 3
    monkeypatch.setattr(plugins, "fire", real_fire)
    order = orders.release_held(order, actor=None)
    assert order.status == "delivered" and len(rows(order)) == 3
    assert Journal.select().where(Journal.kind == "commission.pending").count() == 1
    healthy()


def test_a_late_payment_refunded_for_want_of_stock_reverses_its_commission(database, monkeypatch):
    a, b, c, d = chain()
    product = card_product(keys=1, price=1000, cost=600)
    late = orders.place_order(product.id, 1, user=d)
    monkeypatch.setattr(orders, "now", lambda: late.expires_at + timedelta(seconds=1))
    assert orders.expire_due() == 1
    buy(d, product)  # the last key goes to another order meanwhile
    assert payments.record_payment("sandbox", "late", late.order_no, 1000) == "refunded"
    assert {r[3] for r in rows(late).values()} == {"reversed"}
    assert ledger.balance(ledger.user_account(c.id, "commission_pending")) == 100  # the other order
    healthy()


def test_the_rates_setting_accepts_percentages_and_refuses_the_rest():
    assert rates.parse_rates(" 10, 5 ,2.5% ") == "10,5,2.5"
    assert rates.to_bps("10,5,2.5") == [1000, 500, 250]
    assert rates.parse_rates("0") == "0" and rates.parse_rates("12.25，0.05") == "12.25,0.05"
    for bad in ("", "10,,5", "1,1,1,1,1,1", "10.125", "-1", "101", "60,50", "abc", "nan", "1e1"):
        with pytest.raises(SettingError):
            rates.parse_rates(bad)


def test_the_chart_draws_each_earning_day_within_the_box():
    series = [(f"2025-01-{d:02d}", 0) for d in range(1, 31)]
    series[3] = ("2025-01-04", 50)
    series[29] = ("2025-01-30", 200)
    drawn = chart.bars(series)
    assert [b["day"] for b in drawn["bars"]] == ["2025-01-04", "2025-01-30"]
    tall = drawn["bars"][1]
    assert tall["y"] == chart.TOP and tall["y"] + tall["height"] == drawn["baseline"]
    assert drawn["bars"][0]["height"] == pytest.approx(tall["height"] / 4, abs=0.1)
    assert all(b["x"] >= 0 and b["x"] + b["width"] <= chart.WIDTH for b in drawn["bars"])
    assert [text for _, _, text in drawn["labels"]] == ["01-01", "01-16", "01-30"]
    assert chart.bars([(d, 0) for d, _ in series])["peak"] == 0


# the audit catches tampering ---------------------------------------------------------------


def commission_raised(order):
    Commission.update(amount=Commission.amount + 1).where(Commission.order == order.id).execute()


def pending_without_a_row(order):
    ledger.transfer(
        ledger.system_account("escrow"),
        ledger.user_account(order.user_id, "commission_pending"),
        10,
        "test.corrupt",
    )


def commission_beyond_the_margin(order):
    Order.update(cost=Order.amount - 1).where(Order.id == order.id).execute()


def row_marked_available_early(order):
    Commission.update(status="available").where(Commission.order == order.id).execute()


@pytest.mark.pg
@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (commission_raised, {"commission_matches_ledger"}),
        (pending_without_a_row, {"commission_matches_ledger"}),
        (commission_beyond_the_margin, {"commission_within_margin"}),
        (row_marked_available_early, {"commission_matches_ledger", "commission_follows_orders"}),
    ],
)
def test_the_audit_catches_tampered_commission(database, corrupt, expected):
    a, b, c, d = chain()
    order = buy(d, card_product(price=1000, cost=600))
    healthy()
    corrupt(order)
    failed = {name for name, problems in invariants.run_all().items() if problems}
    assert failed == expected


@pytest.mark.pg
def test_a_settlement_racing_a_refund_lets_exactly_one_win(database):
    """Both claim the order before moving money, so neither deadlocks on the other's locks,
    and whichever order they land in, the money adds up."""
    a, b, c, d = chain()
    product = card_product(keys=20, price=1000, cost=600)
    for _ in range(5):
        order = buy(d, product)
        barrier = threading.Barrier(2)
        outcomes = []

        def run(action, order=order, barrier=barrier, outcomes=outcomes):
            database.connect(reuse_if_open=True)
            try:
                barrier.wait(timeout=30)
                action(Order.get_by_id(order.id))
                outcomes.append(action.__name__)
            except (OrderError, StaleOrder):
                outcomes.append("refused")
            finally:
                database.close()

        def settle(o):
            orders.complete(o)

        def refund(o):
            orders.refund(o, "raced a settlement")

        threads = [threading.Thread(target=run, args=(f,)) for f in (settle, refund)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        # a refund may also come second and take back the settlement: both then succeed
        assert sorted(outcomes) in (
            ["refund", "refused"],
            ["refund", "settle"],
            ["refused", "settle"],
        ), outcomes
        status = Order.get_by_id(order.id).status
        assert status == ("refunded" if "refund" in outcomes else "completed")
    healthy()


@pytest.mark.pg
def test_a_levels_own_rates_replace_the_shops_for_its_members(database):
    """C is an agent whose level pays 20 % at depth 1 and says nothing of depth 2 (B keeps
    the shop's 5 %); the margin still caps the total."""
    from shop.accounts.models import User
    from shop.levels import service as levels
    from shop.levels.service import LevelError

    with pytest.raises(LevelError):
        levels.create_level({"name": "broken", "commission_rates": "60,50"})
    agent = levels.create_level({"name": "agent", "commission_rates": "20"})
    a, b, c, d = chain()
    User.update(level_id=agent.id).where(User.id == c.id).execute()
    order = buy(d, card_product(price=1000, cost=600))
    assert rows(order) == {
        c.id: (1, 2000, 200, "pending"),
        b.id: (2, 500, 50, "pending"),
        a.id: (3, 200, 20, "pending"),
    }
    healthy()
