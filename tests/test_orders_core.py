"""The order lifecycle through the service layer: reserve, pay, deliver, settle, refund,
expire; every step checked against stock, keys and the ledger."""

from datetime import timedelta

import pytest
from selling import card_product, customer, free_product

from shop import crypto, invariants, ledger, settings
from shop.catalog.models import Product
from shop.clock import now
from shop.distribution.models import Commission
from shop.inventory import service as inventory
from shop.inventory.models import CardKey
from shop.ledger.models import Journal
from shop.orders import service as orders
from shop.orders.models import Order, OrderEvent
from shop.orders.service import OrderError
from shop.payments import service as payments


@pytest.fixture(autouse=True)
def keyring():
    crypto.configure(b"k" * 32)


def guest_order(product, qty=1):
    return orders.place_order(
        product.id, qty, contact="guest@example.com", query_password="open-sesame"
    )


def healthy():
    problems = {k: v for k, v in invariants.run_all().items() if v}
    assert problems == {}


@pytest.mark.pg
def test_guest_buys_pays_and_gets_distinct_keys(database):
    product = card_product(keys=3)
    order = guest_order(product, 2)
    assert order.status == "pending" and order.amount == 2000
    assert Product.get_by_id(product.id).stock == 1
    assert payments.record_payment("sandbox", "txn-1", order.order_no, 2000) == "paid"
    order = Order.get_by_id(order.id)
    assert order.status == "delivered"
    secrets = orders.delivered_items(order)
    assert len(set(secrets)) == 2
    assert ledger.balance(ledger.system_account("escrow")) == 2000
    assert [e.to_status for e in order.events.order_by(OrderEvent.id)] == [
        "pending",
        "paid",
        "delivered",
    ]
    healthy()


@pytest.mark.pg
def test_same_callback_twice_credits_once(database):
    order = guest_order(card_product())
    assert payments.record_payment("sandbox", "txn-9", order.order_no, 1000) == "paid"
    assert payments.record_payment("sandbox", "txn-9", order.order_no, 1000) == "already"
    assert ledger.balance(ledger.system_account("escrow")) == 1000
    healthy()


def test_wrong_amount_or_unknown_order_changes_nothing(database):
    order = guest_order(card_product())
    with pytest.raises(payments.PaymentError):
        payments.record_payment("sandbox", "t1", order.order_no, 999)
    with pytest.raises(payments.PaymentError):
        payments.record_payment("sandbox", "t2", "K000000NOPE", 1000)
    assert Order.get_by_id(order.id).status == "pending"
    assert ledger.balance(ledger.system_account("escrow")) == 0
    # the refused transaction id is not burnt: the right payment can still arrive with it
    assert payments.record_payment("sandbox", "t1", order.order_no, 1000) == "paid"


def test_confirm_settles_cost_and_revenue(database):
    order = guest_order(card_product(price=1000, cost=600))
    payments.record_payment("sandbox", "t", order.order_no, 1000)
    orders.complete(Order.get_by_id(order.id))
    assert ledger.balance(ledger.system_account("escrow")) == 0
    assert ledger.balance(ledger.system_account("cost_of_goods")) == 600
    assert ledger.balance(ledger.system_account("revenue")) == 400
    healthy()


def test_refund_returns_money_to_wallet_and_voids_keys(database):
    buyer = customer(wallet=5000)
    product = card_product(keys=2)
    order = orders.place_order(product.id, 1, user=buyer)
    order = orders.pay_with_wallet(order, actor=buyer)
    assert order.status == "delivered"
    wallet = ledger.user_account(buyer.id, "wallet")
    assert ledger.balance(wallet) == 4000
    with pytest.raises(OrderError):
        orders.refund(order, "")
    orders.refund(order, "The key did not work", actor=None)
    order = Order.get_by_id(order.id)
    assert order.status == "refunded" and order.reason == "The key did not work"
    assert ledger.balance(wallet) == 5000
    assert (
        CardKey.select().where(CardKey.order_id == order.id, CardKey.state == "void").count() == 1
    )
    assert Product.get_by_id(product.id).stock == 1
    healthy()


@pytest.mark.parametrize(("typed", "minutes"), [(None, 15), ("40", 40)])
def test_orders_reserve_minutes_sets_a_new_orders_expiry(database, typed, minutes):
    if typed is not None:
        settings.set_value("orders.reserve_minutes", typed)
    assert settings.get("orders.reserve_minutes") == minutes
    before = now()
    order = Order.get_by_id(guest_order(card_product()).id)
    after = now()
    assert before + timedelta(minutes=minutes) <= order.expires_at
    assert order.expires_at <= after + timedelta(minutes=minutes)
    [key] = CardKey.select().where(CardKey.order_id == order.id)
    assert (key.state, key.reserved_until) == ("reserved", order.expires_at)


@pytest.mark.parametrize(("typed", "hours"), [(None, 24), ("2", 2), ("0", 0)])
def test_escrow_hours_sets_a_delivered_orders_settle_after(database, typed, hours):
    if typed is not None:
        settings.set_value("escrow.hours", typed)
    assert settings.get("escrow.hours") == hours
    order = guest_order(card_product())
    before = now()
    payments.record_payment("sandbox", "txn-1", order.order_no, 1000)
    after = now()
    order = Order.get_by_id(order.id)
    assert order.status == "delivered"
    assert before + timedelta(hours=hours) <= order.settle_after <= after + timedelta(hours=hours)
    assert orders.complete_due() == (1 if hours == 0 else 0)


def test_expiry_releases_stock_and_late_payment_reclaims_it(database, monkeypatch):
    product = card_product(keys=1)
    order = guest_order(product)
    monkeypatch.setattr(orders, "now", lambda: order.expires_at + timedelta(seconds=1))
    assert orders.expire_due() == 1
    assert Product.get_by_id(product.id).stock == 1
    assert payments.record_payment("sandbox", "late", order.order_no, 1000) == "reclaimed"
    assert Order.get_by_id(order.id).status == "delivered"
    healthy()


def test_late_payment_with_no_stock_left_is_refunded(database, monkeypatch):
    buyer = customer(wallet=0)
    product = card_product(keys=1)
    order = orders.place_order(product.id, 1, user=buyer)
    monkeypatch.setattr(orders, "now", lambda: order.expires_at + timedelta(seconds=1))
    orders.expire_due()
    other = guest_order(product)
    payments.record_payment("sandbox", "other", other.order_no, 1000)
    assert payments.record_payment("sandbox", "late", order.order_no, 1000) == "refunded"
    assert Order.get_by_id(order.id).status == "refunded"
    assert ledger.balance(ledger.user_account(buyer.id, "wallet")) == 1000
    healthy()


def test_sold_out_is_a_clear_409(database):
    product = card_product(keys=1)
    guest_order(product)
    with pytest.raises(OrderError) as err:
        guest_order(product)
    assert err.value.code == "sold_out" and err.value.status == 409
    assert Order.select().count() == 1


@pytest.mark.parametrize("qty", [0, -1, 1.5, "2.0", "abc", 10**9, True])
def test_bad_quantity_is_refused(database, qty):
    product = card_product(keys=3)
    with pytest.raises(OrderError) as err:
        guest_order(product, qty)
    assert err.value.code == "bad_quantity"
    assert Order.select().count() == 0 and Product.get_by_id(product.id).stock == 3


def test_api_order_is_idempotent(database):
    buyer = customer(wallet=5000)
    product = card_product(keys=3)
    first, created = orders.place_paid_order(
        buyer, product.id, 1, None, idem_key="a", request_hash="h"
    )
    again, created_again = orders.place_paid_order(
        buyer, product.id, 1, None, idem_key="a", request_hash="h"
    )
    assert created and not created_again and first.id == again.id
    assert first.status == "delivered"
    with pytest.raises(OrderError) as err:
        orders.place_paid_order(buyer, product.id, 2, None, idem_key="a", request_hash="other")
    assert err.value.code == "idempotency_conflict"
    assert ledger.balance(ledger.user_account(buyer.id, "wallet")) == 4000
    healthy()


def test_api_order_with_short_wallet_leaves_nothing(database):
    buyer = customer(wallet=500)
    product = card_product(keys=3)
    with pytest.raises(OrderError) as err:
        orders.place_paid_order(buyer, product.id, 1, None, idem_key="x", request_hash="h")
    assert err.value.code == "insufficient_balance" and err.value.status == 402
    assert Order.select().count() == 0 and Product.get_by_id(product.id).stock == 3
    assert inventory.counts(product.id)["available"] == 3


def test_failed_reclaim_of_a_late_payment_leaves_stock_untouched(database, monkeypatch):
    """The stock column says one key is left but the keys disagree (drift): the re-claim
    fails, the order is refunded, and the stock column is not lowered by the attempt."""
    product = card_product(keys=1)
    order = guest_order(product)
    monkeypatch.setattr(orders, "now", lambda: order.expires_at + timedelta(seconds=1))
    orders.expire_due()
    CardKey.update(state="void").where(CardKey.product == product.id).execute()
    assert payments.record_payment("sandbox", "late", order.order_no, 1000) == "refunded"
    assert Product.get_by_id(product.id).stock == 1


# free products -----------------------------------------------------------------------------


def moved_money(order) -> bool:
    return Journal.select().where(Journal.ref == order.order_no).exists()


@pytest.mark.pg
def test_a_free_order_is_paid_and_delivered_as_it_is_placed(database):
    """Through the same steps as any order, but nothing reaches the ledger: there is no money
    for escrow, nor any commission on it, even with a referrer."""
    referrer = customer("referrer@example.com")
    product = free_product(keys=3)
    order = orders.place_order(
        product.id,
        2,
        contact="guest@example.com",
        query_password="open-sesame",
        referrer_id=referrer.id,
    )
    assert (order.status, order.amount, order.gateway) == ("delivered", 0, "free")
    assert order.paid_at and order.delivered_at
    assert len(set(orders.delivered_items(order))) == 2
    assert [e.to_status for e in order.events.order_by(OrderEvent.id)] == [
        "pending",
        "paid",
        "delivered",
    ]
    assert Product.get_by_id(product.id).stock == 1
    assert not moved_money(order) and Commission.select().count() == 0
    assert ledger.balance(ledger.system_account("escrow")) == 0
    healthy()


@pytest.mark.pg
def test_a_free_order_settles_and_refunds_with_nothing_to_move(database):
    buyer = customer()
    product = free_product(keys=3)
    settled = orders.complete(orders.place_order(product.id, 1, user=buyer))
    refunded = orders.refund(orders.place_order(product.id, 1, user=buyer), "Promotion ended")
    assert (settled.status, refunded.status) == ("completed", "refunded")
    # refunding a completed free order takes nothing back either
    taken_back = orders.refund(settled, "Given by mistake")
    assert taken_back.status == "refunded"
    voided = CardKey.select().where(CardKey.state == "void", CardKey.product == product.id)
    assert voided.count() == 2 and Product.get_by_id(product.id).stock == 1
    assert not moved_money(settled) and not moved_money(refunded)
    assert ledger.balance(ledger.user_account(buyer.id, "wallet")) == 0
    healthy()
