"""Refunds that go back through the gateway an order was paid with (shop.payments.refunds),
driven the way staff and customers meet them: the sandbox gateway refunding, a gateway that
keeps failing until staff step in, the order pages, the CLI and the audit."""

import json
from datetime import timedelta

import pytest
from conftest import login, submit
from flask.testing import FlaskClient
from paying import add_checkout_stand_in
from selling import balance, card_product, customer, pending_order

from shop import invariants, ledger, settings
from shop.audit.models import AuditLog
from shop.clock import now
from shop.db import db
from shop.inventory.models import CardKey
from shop.ledger.models import Journal
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import refunds
from shop.payments import service as payments
from shop.payments.gateway import RefundFailed
from shop.payments.models import GatewayRefund
from shop.plugins import registry

REASON = "The key did not work"


class OwnContextClient(FlaskClient):
    """Each request in an app context of its own, as in production, while the test holds one
    open for its service calls (a shared one would keep a stale CSRF token in `g`)."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def shop(app, owner):
    add_checkout_stand_in(app)
    app.test_client_class = OwnContextClient
    with app.app_context():
        registry().set_enabled("sandbox", True)
        yield app


@pytest.fixture
def staff(shop, owner):
    client = shop.test_client()
    login(client, *owner)
    return client


class BrokenSandbox:
    """The sandbox gateway, down until `fixed`, remembering every refund it was asked for."""

    def __init__(self, gateway_class):
        self.asked = []
        self.fixed = False
        self.refund = gateway_class.refund

    def __len__(self):
        return len(self.asked)

    def __call__(self, gateway, refundable):
        self.asked.append(refundable)
        if not self.fixed:
            raise RefundFailed("the sandbox is down")
        return self.refund(gateway, refundable)


@pytest.fixture
def broken_sandbox(shop, monkeypatch):
    gateway_class = registry().info("sandbox").module.SandboxGateway
    broken = BrokenSandbox(gateway_class)
    monkeypatch.setattr(gateway_class, "refund", lambda self, r: broken(self, r))
    return broken


def pay_by_sandbox(client, user=None, price=1000) -> Order:
    """An order paid through the sandbox at checkout (a guest's unless `user`)."""
    product = card_product(price=price)
    order = pending_order(product, user)
    assert client.get(f"/test/pay/{order.order_no}/sandbox").status_code == 303
    order = Order.get_by_id(order.id)
    assert order.status == "delivered" and order.gateway == "sandbox"
    return order


def in_flight(gateway="sandbox") -> int:
    return balance(refunds.in_flight_account(gateway))


def journal_kinds(order) -> list[str]:
    return [
        j.kind for j in Journal.select().where(Journal.ref == order.order_no).order_by(Journal.id)
    ]


def later(monkeypatch, **delta):
    """Set the refunds' clock to now plus `delta`."""
    moment = now() + timedelta(**delta)
    monkeypatch.setattr(refunds, "now", lambda: moment)


def healthy():
    assert {k: v for k, v in invariants.run_all().items() if v} == {}


def text(response) -> str:
    return response.get_data(as_text=True)


def refund_page(staff, order, action):
    url = f"/admin/orders/{order.order_no}"
    return submit(staff, f"{url}/refund/{action}", {}, form_url=url)


# through the gateway ----------------------------------------------------------------------


@pytest.mark.pg
def test_a_sandbox_paid_order_is_refunded_through_the_sandbox(shop):
    buyer = customer()
    order = pay_by_sandbox(shop.test_client(), buyer)
    assert balance(ledger.system_account("gateway:sandbox")) == -1000

    orders.refund(order, REASON)

    order = Order.get_by_id(order.id)
    assert order.status == "refunded" and order.reason == REASON
    refund = refunds.for_order(order)
    assert (refund.gateway, refund.amount, refund.status, refund.attempts) == (
        "sandbox",
        1000,
        "sent",
        1,
    )
    assert refund.refund_no == "R" + order.order_no
    assert refund.gateway_refund_id == "sbx-R" + order.order_no
    # the money left through the gateway it came in by: nothing in the wallet, nothing held
    assert balance(ledger.system_account("gateway:sandbox")) == 0
    assert balance(ledger.user_account(buyer.id, "wallet")) == 0
    assert balance(ledger.system_account("escrow")) == 0
    assert in_flight() == 0
    assert journal_kinds(order) == ["order.pay", "order.refund", "refund.sent"]
    assert [k.state for k in CardKey.select().where(CardKey.order_id == order.id)] == ["void"]
    assert refunds.send_due() == 0  # nothing left to send
    healthy()


def test_a_wallet_paid_order_is_refunded_to_the_wallet_as_before(shop):
    buyer = customer(wallet=5000)
    order = orders.pay_with_wallet(orders.place_order(card_product().id, 1, user=buyer), buyer)
    orders.refund(order, REASON)
    assert refunds.for_order(order) is None
    assert balance(ledger.user_account(buyer.id, "wallet")) == 5000
    assert journal_kinds(order) == ["order.pay", "order.refund"]
    healthy()


def test_a_gateway_disabled_before_the_refund_leaves_it_to_the_refund_queue(shop):
    order = pay_by_sandbox(shop.test_client())
    registry().set_enabled("sandbox", False)
    orders.refund(order, REASON)
    assert refunds.for_order(order) is None
    assert balance(ledger.system_account("refunds_payable")) == 1000
    assert balance(ledger.system_account("gateway:sandbox")) == -1000
    healthy()


def test_a_late_payment_refunded_automatically_is_left_to_the_worker(shop):
    """A refund made inside the gateway's own payment callback does not call the gateway
    back from there: the worker sends it."""
    product = card_product(keys=1)
    order = orders.place_order(product.id, 1, contact="g@example.com", query_password="pass1")
    Order.update(expires_at=now() - timedelta(minutes=1)).where(Order.id == order.id).execute()
    assert orders.expire_due() == 1
    other = orders.place_order(product.id, 1, contact="h@example.com", query_password="pass2")
    assert payments.record_payment("sandbox", "first", other.order_no, 1000) == "paid"

    assert payments.record_payment("sandbox", "late", order.order_no, 1000) == "refunded"
    refund = refunds.for_order(order)
    assert (refund.status, refund.attempts) == ("pending", 0)
    assert in_flight() == 1000
    healthy()
    assert refunds.send_due() == 1
    assert refunds.for_order(order).status == "sent" and in_flight() == 0
    healthy()


# a gateway that fails -----------------------------------------------------------------------


@pytest.mark.pg
def test_a_failing_gateway_is_retried_with_growing_waits_then_staff_reroute(
    staff, broken_sandbox, monkeypatch
):
    settings.set_value("refunds.max_attempts", "3")
    buyer = customer()
    order = pay_by_sandbox(staff, buyer)
    answer = submit(
        staff,
        f"/admin/orders/{order.order_no}/refund",
        {"reason": REASON},
        form_url=f"/admin/orders/{order.order_no}",
    )
    assert answer.status_code == 303, text(answer)
    refund = refunds.for_order(order)
    assert (refund.status, refund.attempts, refund.last_error) == (
        "pending",
        1,
        "the sandbox is down",
    )
    assert [r.refund_no for r in broken_sandbox.asked] == [refund.refund_no]
    assert in_flight() == 1000 and balance(ledger.user_account(buyer.id, "wallet")) == 0
    healthy()

    assert refunds.send_due() == 0 and len(broken_sandbox) == 1  # waits a minute first
    later(monkeypatch, seconds=61)
    assert refunds.send_due() == 0 and len(broken_sandbox) == 2
    assert refunds.for_order(order).status == "pending"
    later(monkeypatch, seconds=61 + 60)  # the second wait is two minutes
    assert refunds.send_due() == 0 and len(broken_sandbox) == 2
    later(monkeypatch, seconds=61 + 121)
    assert refunds.send_due() == 0 and len(broken_sandbox) == 3
    refund = refunds.for_order(order)
    assert (refund.status, refund.attempts) == ("failed", 3)
    later(monkeypatch, days=2)
    assert refunds.send_due() == 0 and len(broken_sandbox) == 3  # failed: staff decide
    assert {r.refund_no for r in broken_sandbox.asked} == {refund.refund_no}  # the same id
    assert in_flight() == 1000
    healthy()

    later(monkeypatch)  # back to now
    page = text(staff.get(f"/admin/orders/{order.order_no}"))
    assert "failed" in page and "the sandbox is down" in page
    assert "Refund to the buyer's wallet instead" in page
    listing = text(staff.get("/admin/refunds?status=failed"))
    assert order.order_no in listing
    assert "Gateway refunds failed" in text(staff.get("/admin/"))

    answer = refund_page(staff, order, "reroute")
    assert answer.status_code == 303
    assert "The refund went to the buyer" in text(staff.get(answer.headers["Location"]))
    refund = refunds.for_order(order)
    assert refund.status == "rerouted"
    assert balance(ledger.user_account(buyer.id, "wallet")) == 1000
    assert in_flight() == 0 and balance(ledger.system_account("gateway:sandbox")) == -1000
    assert journal_kinds(order) == ["order.pay", "order.refund", "refund.rerouted"]
    (audit,) = AuditLog.select().where(AuditLog.action == "refund.reroute")
    assert audit.target == f"order:{order.order_no}"
    assert json.loads(audit.detail)["to"] == f"user:{buyer.id}:wallet"
    healthy()

    again = refund_page(staff, order, "reroute")  # twice is refused and changes nothing
    assert again.status_code == 409 and "rerouted" in text(again)
    assert balance(ledger.user_account(buyer.id, "wallet")) == 1000
    assert refund_page(staff, order, "retry").status_code == 409
    assert len(broken_sandbox) == 3


def test_a_guests_failed_refund_moves_to_the_manual_queue(shop, broken_sandbox):
    settings.set_value("refunds.max_attempts", "1")
    order = pay_by_sandbox(shop.test_client())
    orders.refund(order, REASON)
    assert refunds.for_order(order).status == "failed"
    refunds.reroute(order)
    assert refunds.for_order(order).status == "rerouted"
    assert balance(ledger.system_account("refunds_payable")) == 1000
    assert in_flight() == 0
    healthy()


def test_staff_retry_after_the_gateway_is_fixed_sends_it(staff, broken_sandbox):
    settings.set_value("refunds.max_attempts", "1")
    order = pay_by_sandbox(staff)
    orders.refund(order, REASON)
    assert refunds.for_order(order).status == "failed"

    again = refund_page(staff, order, "retry")  # still broken: stays failed
    assert again.status_code == 303
    refund = refunds.for_order(order)
    assert (refund.status, refund.attempts) == ("failed", 2)

    broken_sandbox.fixed = True
    assert refund_page(staff, order, "retry").status_code == 303
    refund = refunds.for_order(order)
    assert (refund.status, refund.attempts, refund.last_error) == ("sent", 3, "")
    assert in_flight() == 0 and balance(ledger.system_account("gateway:sandbox")) == 0
    retries = AuditLog.select().where(AuditLog.action == "refund.retry").count()
    assert retries == 2
    healthy()


def test_a_refund_an_attempt_is_working_on_cannot_be_rerouted(shop, broken_sandbox):
    order = pay_by_sandbox(shop.test_client())
    orders.refund(order, REASON)
    refund = refunds.for_order(order)
    GatewayRefund.update(claim="other", claimed_until=now() + timedelta(minutes=5)).where(
        GatewayRefund.id == refund.id
    ).execute()
    with pytest.raises(refunds.RefundError) as refused:
        refunds.reroute(order)
    assert refused.value.status == 409 and refused.value.code == "refund_busy"
    with pytest.raises(refunds.RefundError):
        refunds.retry(order)
    assert refunds.send_due() == 0 and len(broken_sandbox) == 1
    assert refunds.for_order(order).status == "pending" and in_flight() == 1000
    healthy()


def test_staff_refund_actions_without_a_gateway_refund_are_refused(staff, shop):
    buyer = customer(wallet=5000)
    order = orders.pay_with_wallet(orders.place_order(card_product().id, 1, user=buyer), buyer)
    orders.refund(order, REASON)
    answer = refund_page(staff, order, "reroute")
    assert answer.status_code == 404
    assert "no refund through a payment gateway" in text(answer)
    assert balance(ledger.user_account(buyer.id, "wallet")) == 5000
    assert AuditLog.select().where(AuditLog.action.startswith("refund.")).count() == 0


# what customers see -----------------------------------------------------------------------


def test_the_order_page_says_where_the_money_went(shop, broken_sandbox):
    buyer_client = shop.test_client()
    buyer = customer()
    login(buyer_client, "buyer@example.com", "buyer-pass-1")
    order = pay_by_sandbox(buyer_client, buyer)
    orders.refund(order, REASON)
    page = text(buyer_client.get(f"/o/{order.order_no}"))
    assert "Refunded. Reason: The key did not work." in page
    assert "being returned to Sandbox (demo, no real money)" in page

    broken_sandbox.fixed = True
    refunds.retry(order)
    page = text(buyer_client.get(f"/o/{order.order_no}"))
    assert "was returned to Sandbox (demo, no real money)" in page
    assert "back in your wallet" not in page

    buyer_client.set_cookie("lang", "zh_CN")
    page = text(buyer_client.get(f"/o/{order.order_no}"))
    assert "退回到 Sandbox (demo, no real money)" in page


# operator CLI ------------------------------------------------------------------------------


@pytest.fixture
def cli(shop):
    runner = shop.test_cli_runner()

    def run(*args):
        result = runner.invoke(args=["shop", *args, "--json"])
        return result.exit_code, json.loads(result.stdout)

    return run


def test_cli_lists_and_retries_gateway_refunds(shop, cli, broken_sandbox):
    settings.set_value("refunds.max_attempts", "1")
    order = pay_by_sandbox(shop.test_client())
    orders.refund(order, REASON)

    code, out = cli("orders", "refunds", "--status", "failed")
    assert code == 0
    (listed,) = out["refunds"]
    assert listed["order_no"] == order.order_no and listed["amount"] == 1000
    assert (listed["status"], listed["attempts"]) == ("failed", 1)
    assert cli("orders", "refunds", "--status", "sent") == (0, {"refunds": []})
    code, out = cli("orders", "refunds", "--status", "lost")
    assert code == 2 and out["error"]["code"] == "usage"

    code, out = cli("orders", "refund-retry", order.order_no)
    assert code == 1 and (out["status"], out["attempts"]) == ("failed", 2)
    broken_sandbox.fixed = True
    code, out = cli("orders", "refund-retry", order.order_no)
    assert code == 0 and out["status"] == "sent"
    code, out = cli("orders", "refund-retry", order.order_no)
    assert code == 2 and "sent" in out["error"]["message"]
    code, out = cli("orders", "refund-reroute", "K000NOPE")
    assert code == 2 and out["error"]["code"] == "not_found"
    healthy()


# the audit ---------------------------------------------------------------------------------


def failing_checks() -> set[str]:
    return {name for name, problems in invariants.run_all().items() if problems}


@pytest.mark.pg
def test_the_audit_finds_refund_money_in_the_wrong_place(shop, broken_sandbox):
    order = pay_by_sandbox(shop.test_client())
    other = pay_by_sandbox(shop.test_client())
    orders.refund(order, REASON)
    healthy()
    refund = refunds.for_order(order)
    flight = refunds.in_flight_account("sandbox")

    with db.atomic() as tx:  # marked sent, but the money never left the in-flight account
        GatewayRefund.update(status="sent").where(GatewayRefund.id == refund.id).execute()
        assert failing_checks() == {"refunds_in_one_place", "refunds_in_flight"}
        tx.rollback()
    with db.atomic() as tx:  # the money taken out of flight with no refund to show for it
        ledger.transfer(flight, ledger.system_account("equity"), 1000, "oops")
        assert failing_checks() == {"refunds_in_flight"}
        tx.rollback()
    with db.atomic() as tx:  # a gateway refund for an order that was never refunded
        GatewayRefund.create(
            order=other.id, refund_no="R" + other.order_no, gateway="sandbox", txn_id="x", amount=1
        )
        assert "refunds_in_one_place" in failing_checks()
        tx.rollback()
    healthy()
