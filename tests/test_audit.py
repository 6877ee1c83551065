"""`shop audit` on a shop that has sold things: clean when healthy, and each kind of damage
(made here on purpose, behind the services' backs) fails the check that names it."""

import json
from datetime import timedelta

import pytest
from selling import card_product, customer

from shop import ledger
from shop.catalog.models import Product
from shop.db import db
from shop.inventory.models import CardKey
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import service as payments


def guest_order(product, qty=1):
    return orders.place_order(
        product.id, qty, contact="guest@example.com", query_password="open-sesame"
    )


def pay(order, txn):
    payments.record_payment("sandbox", txn, order.order_no, order.amount)
    return Order.get_by_id(order.id)


@pytest.fixture
def shop(app, monkeypatch):
    """A shop with orders in most states: completed, delivered, refunded, expired, pending,
    a manual order delivered by hand and one waiting in the queue."""
    with app.app_context():
        cards = card_product(keys=8, price=1000, cost=600)
        completed = pay(guest_order(cards, 2), "t-completed")
        orders.complete(completed)
        delivered = pay(guest_order(cards), "t-delivered")
        buyer = customer(wallet=5000)
        refunded = orders.pay_with_wallet(orders.place_order(cards.id, 1, user=buyer))
        orders.refund(refunded, "The key did not work")
        expiring = guest_order(cards)
        with monkeypatch.context() as later:
            later.setattr(orders, "now", lambda: expiring.expires_at + timedelta(seconds=1))
            assert orders.expire_due() == 1
        pending = guest_order(cards)
        manual = Product.create(name="Netflix 1 month", kind="manual", price=3000, cost=2500)
        by_hand = pay(guest_order(manual), "t-manual")
        orders.deliver_manually(by_hand, ["ACCOUNT user / pass"], actor=None)
        waiting = pay(guest_order(manual), "t-waiting")
        assert waiting.status == "paid"
    return {
        "cards": cards.id,
        "completed": completed.id,
        "delivered": delivered.id,
        "refunded": refunded.id,
        "pending": pending.id,
    }


def audit(app):
    result = app.test_cli_runner().invoke(args=["shop", "audit", "--json"])
    out = json.loads(result.stdout)
    failed = {name for name, problems in out["checks"].items() if problems != "ok"}
    return result.exit_code, failed, out


@pytest.mark.pg
def test_a_healthy_shop_passes(app, shop):
    code, failed, out = audit(app)
    assert (code, failed) == (0, set()), out
    for name in (
        "card_key_states",
        "reserved_keys",
        "sold_keys",
        "card_keys_unique",
        "stock_matches_keys",
        "escrow_matches_orders",
        "settlements",
        "ledger_balanced",
    ):
        assert out["checks"][name] == "ok"


def key_of(order_id, state):
    return CardKey.select().where(CardKey.order_id == order_id, CardKey.state == state).first()


def available_key_claims_an_order(ids):
    key = CardKey.select().where(CardKey.state == "available").first()
    CardKey.update(order_id=ids["delivered"]).where(CardKey.id == key.id).execute()


def unknown_state(ids):
    key = key_of(ids["refunded"], "void")
    CardKey.update(state="lost").where(CardKey.id == key.id).execute()


def reserved_key_of_a_cancelled_order(ids):
    Order.update(status="cancelled").where(Order.id == ids["pending"]).execute()


def sold_key_lost_from_its_order(ids):
    CardKey.update(state="void").where(CardKey.id == key_of(ids["completed"], "sold").id).execute()


def sold_key_moved_to_another_order(ids):
    key = key_of(ids["completed"], "sold")
    CardKey.update(order_id=ids["delivered"]).where(CardKey.id == key.id).execute()


def key_stored_twice(ids):
    # only a database without the unique index can hold this (e.g. a careless restore)
    db.execute_sql("DROP INDEX card_key_product_id_secret_index")
    key = key_of(ids["refunded"], "void")
    CardKey.insert(
        product=key.product_id, secret="copy", secret_index=key.secret_index, state="void"
    ).execute()


def stock_off_by_one(ids):
    Product.update(stock=Product.stock + 1).where(Product.id == ids["cards"]).execute()


def money_in_escrow_without_an_order(ids):
    ledger.transfer(
        ledger.system_account("equity"), ledger.system_account("escrow"), 100, "test.corrupt"
    )


def delivered_order_amount_changed(ids):
    Order.update(amount=Order.amount + 1).where(Order.id == ids["delivered"]).execute()


def settled_cost_disagrees(ids):
    Order.update(cost=Order.cost - 1).where(Order.id == ids["completed"]).execute()


def settled_amount_disagrees(ids):
    Order.update(amount=Order.amount + 1).where(Order.id == ids["completed"]).execute()


@pytest.mark.pg
@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (available_key_claims_an_order, {"card_key_states"}),
        (unknown_state, {"card_key_states"}),
        (reserved_key_of_a_cancelled_order, {"reserved_keys"}),
        (sold_key_lost_from_its_order, {"sold_keys"}),
        (sold_key_moved_to_another_order, {"sold_keys"}),
        (key_stored_twice, {"card_keys_unique"}),
        (stock_off_by_one, {"stock_matches_keys"}),
        (money_in_escrow_without_an_order, {"escrow_matches_orders"}),
        (delivered_order_amount_changed, {"escrow_matches_orders"}),
        (settled_cost_disagrees, {"settlements"}),
        (settled_amount_disagrees, {"settlements"}),
    ],
)
def test_each_corruption_fails_its_check(app, shop, corrupt, expected):
    with app.app_context():
        corrupt(shop)
    code, failed, out = audit(app)
    assert code == 1 and out["ok"] is False
    assert failed == expected, out["checks"]
    for name in expected:
        assert out["checks"][name] and all(isinstance(p, str) for p in out["checks"][name])


def test_a_settle_journal_for_an_unsettled_order_is_caught(app, shop):
    with app.app_context():
        Order.update(status="delivered").where(Order.id == shop["completed"]).execute()
    code, failed, out = audit(app)
    assert code == 1
    assert "settlements" in failed and "escrow_matches_orders" in failed
    assert any("which is delivered" in p for p in out["checks"]["settlements"])
