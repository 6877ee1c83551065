"""Refunds of epay orders through the refund API, against the bundled simulator serving on a
real port: the shop's request as the protocol says, answers that do not prove a refund taken
as failed attempts, a process killed between the refund's commit and the call, and two
workers racing to send the same refund."""

import importlib
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from paying import (
    EPAY_KEY,
    EPAY_PID,
    add_checkout_stand_in,
    configure_epay,
    form_fields,
    md5_sign,
)
from processes import ROOT, Started, shop_env, wait_for
from selling import balance, card_product, customer, pending_order
from werkzeug.serving import make_server

from shop import invariants, ledger
from shop.clock import now
from shop.db import db
from shop.ledger.models import Journal
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import refunds
from shop.plugins import PluginError, registry

REASON = "The key did not work"
REFUND_FIELDS = {
    "pid",
    "key",
    "trade_no",
    "out_trade_no",
    "out_refund_no",
    "money",
    "timestamp",
    "sign",
    "sign_type",
}


class World:
    """The shop and the cashier: `state` is the simulator's memory (its trades, the refund
    requests it got) and its knobs; `cashier` its test client, for paying."""

    def __init__(self, app, simulator, url):
        self.app, self.shop = app, app.test_client()
        self.state = simulator.extensions["epay_simulator"]
        self.cashier = simulator.test_client()
        self.refund_url = url

    def pay(self, user=None, price=1000) -> Order:
        """An order paid at the cashier, its notify delivered to the shop."""
        product = card_product(price=price)
        order = pending_order(product, user)
        start = self.shop.get(f"/test/pay/{order.order_no}/epay")
        url = urlsplit(start.headers["Location"])
        page = self.cashier.get(f"{url.path}?{url.query}")
        assert self.cashier.post("/pay", data=form_fields(page)).status_code == 303
        order = Order.get_by_id(order.id)
        assert order.status == "delivered" and order.gateway == "epay"
        return order


@pytest.fixture
def world(app, owner):
    add_checkout_stand_in(app)
    configure_epay(app, api_url="http://cashier.test/")
    shop = app.test_client()

    def call_notify(url, params):
        answer = shop.get(urlsplit(url).path, query_string=params)
        return answer.status_code, answer.get_data(as_text=True)

    module = importlib.import_module("kashop_plugins.epay.simulator")
    simulator = module.create_simulator(EPAY_PID, EPAY_KEY, call_notify)
    server = make_server("127.0.0.1", 0, simulator, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_port}/api.php?act=refund"
    with app.app_context():
        registry().save_settings("epay", {"refund_url": url})
        yield World(app, simulator, url)
    server.shutdown()
    serving.join(timeout=10)


def in_flight() -> int:
    return balance(refunds.in_flight_account("epay"))


def later(monkeypatch, **delta):
    moment = now() + timedelta(**delta)
    monkeypatch.setattr(refunds, "now", lambda: moment)


def sent_journals(order) -> int:
    query = Journal.select().where(
        (Journal.ref == order.order_no) & (Journal.kind == "refund.sent")
    )
    return query.count()


def healthy():
    assert {k: v for k, v in invariants.run_all().items() if v} == {}


# the request and a good answer ------------------------------------------------------------


@pytest.mark.pg
@pytest.mark.parametrize("success_code", [1, 0])
def test_an_epay_order_is_refunded_through_the_refund_api(world, success_code):
    world.state.refund_code = success_code
    registry().save_settings("epay", {"refund_success_code": str(success_code)})
    buyer = customer()
    order = world.pay(buyer, price=1234)
    (trade_no,) = world.state.trades

    orders.refund(order, REASON)

    (asked,) = world.state.refund_calls
    assert set(asked) == REFUND_FIELDS
    assert (asked["pid"], asked["key"], asked["sign_type"]) == (EPAY_PID, EPAY_KEY, "MD5")
    assert (asked["trade_no"], asked["out_trade_no"]) == (trade_no, order.order_no)
    assert (asked["out_refund_no"], asked["money"]) == ("R" + order.order_no, "12.34")
    unsigned = {k: v for k, v in asked.items() if k != "key"}
    assert asked["sign"] == md5_sign(unsigned, EPAY_KEY)
    refund = refunds.for_order(order)
    assert (refund.status, refund.attempts, refund.txn_id) == ("sent", 1, trade_no)
    assert refund.gateway_refund_id.startswith("RF")
    assert world.state.trades[trade_no]["refunded"] == 1234
    assert balance(ledger.system_account("gateway:epay")) == 0
    assert balance(ledger.user_account(buyer.id, "wallet")) == 0
    assert in_flight() == 0 and sent_journals(order) == 1
    healthy()


def test_without_a_refund_url_epay_orders_are_refunded_to_the_wallet(world):
    registry().save_settings("epay", {"refund_url": ""})
    buyer = customer()
    order = world.pay(buyer)
    orders.refund(order, REASON)
    assert refunds.for_order(order) is None and world.state.refund_calls == []
    assert balance(ledger.user_account(buyer.id, "wallet")) == 1000
    healthy()


def test_the_refund_url_must_be_https_unless_it_is_this_machine(world):
    reg = registry()
    reg.save_settings("epay", {"refund_url": "http://pay.example.com/api.php?act=refund"})
    reg.set_enabled("epay", False)
    with pytest.raises(PluginError, match="must be https"):
        reg.set_enabled("epay", True)
    reg.save_settings("epay", {"refund_url": "https://pay.example.com/api.php?act=refund"})
    reg.set_enabled("epay", True)
    reg.save_settings("epay", {"refund_url": "http://pay.example.com/api.php?act=refund"})
    order = world.pay()  # set wrong after enabling: no refund goes there, nor the key with it
    orders.refund(order, REASON)
    assert refunds.for_order(order) is None and world.state.refund_calls == []
    assert balance(ledger.system_account("refunds_payable")) == 1000


# answers that prove nothing ---------------------------------------------------------------


FORGED = {
    "a refusal": lambda answer: {"code": -1, "msg": "该订单已全额退款！"},
    "another success code": lambda answer: {**answer, "code": 0},
    "true for a code": lambda answer: {**answer, "code": True},
    "another amount": lambda answer: {**answer, "money": "0.01"},
    "another refund": lambda answer: {**answer, "out_refund_no": "R-SOMEONE-ELSE"},
    "another trade": lambda answer: {**answer, "trade_no": "2024110100000000001"},
    "not json": lambda answer: "success",
    "a list": lambda answer: [answer],
    "a server error": lambda answer: ("Internal Server Error", 500),
    "a redirect": lambda answer: ("", 302, {"Location": "/login"}),
}


@pytest.mark.parametrize("forged", FORGED.values(), ids=FORGED.keys())
def test_an_answer_that_does_not_prove_the_refund_is_a_failed_attempt(world, monkeypatch, forged):
    """The simulator made the refund but its answer is replaced: the shop must not believe
    it, and its retry, with the same refund number, gets the refund already made."""
    world.state.tamper = forged
    order = world.pay()
    (trade_no,) = world.state.trades
    orders.refund(order, REASON)
    refund = refunds.for_order(order)
    assert (refund.status, refund.attempts) == ("pending", 1)
    assert refund.last_error.startswith("the refund API")
    assert in_flight() == 1000 and balance(ledger.system_account("gateway:epay")) == -1000
    healthy()

    world.state.tamper = None
    later(monkeypatch, minutes=2)
    assert refunds.send_due() == 1
    assert refunds.for_order(order).status == "sent" and len(world.state.refund_calls) == 2
    assert world.state.trades[trade_no]["refunded"] in (0, 1000)  # never refunded twice
    assert in_flight() == 0 and balance(ledger.system_account("gateway:epay")) == 0
    healthy()


def test_a_silent_refund_api_is_a_failed_attempt(world, monkeypatch):
    monkeypatch.setattr(registry().info("epay").module, "REFUND_TIMEOUT", 0.2)
    world.state.refund_delay = 1.0
    order = world.pay()
    orders.refund(order, REASON)
    refund = refunds.for_order(order)
    assert (refund.status, refund.attempts) == ("pending", 1)
    assert "did not answer" in refund.last_error and "Timeout" in refund.last_error
    assert in_flight() == 1000
    healthy()


# exactly once -----------------------------------------------------------------------------


REFUND_IN_CHILD = (
    "import sys\n"
    "from shop import create_app\n"
    "from shop.orders import service\n"
    "from shop.orders.models import Order\n"
    "app = create_app()\n"
    "with app.app_context():\n"
    "    service.refund(Order.get(Order.order_no == sys.argv[1]), 'The key did not work')\n"
)


@pytest.mark.pg
def test_killed_after_the_refund_commits_the_worker_sends_it_once(world, tmp_path):
    order = world.pay()
    env = shop_env(**{k: os.environ[k] for k in ("SHOP_INSTANCE", "SHOP_DATABASE_URL")})
    died = subprocess.run(
        [sys.executable, "-c", REFUND_IN_CHILD, order.order_no],
        cwd=ROOT,
        env={**env, "SHOP_CRASH_AT": "refund.committed"},
        capture_output=True,
        timeout=60,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-2000:]
    assert Order.get_by_id(order.id).status == "refunded"  # committed, nothing lost
    refund = refunds.for_order(order)
    assert (refund.status, refund.attempts) == ("pending", 0)
    assert world.state.refund_calls == [] and in_flight() == 1000
    healthy()

    worker = Started(
        ["-m", "flask", "--app", "app", "shop", "worker"], ROOT, env, tmp_path / "worker.log"
    )
    try:
        assert wait_for(lambda: refunds.for_order(order).status == "sent", 45), worker.log()
    finally:
        worker.stop(signal.SIGINT)
        worker.cleanup()
    assert refunds.send_due() == 0
    assert len(world.state.refund_calls) == 1 and sent_journals(order) == 1
    refund = refunds.for_order(order)
    assert refund.attempts == 1 and refund.refund_no == "R" + order.order_no
    assert in_flight() == 0 and balance(ledger.system_account("gateway:epay")) == 0
    healthy()


@pytest.mark.pg
def test_two_workers_sending_at_once_ask_the_gateway_once(world, monkeypatch):
    world.state.tamper = FORGED["a server error"]  # the first attempt's answer is lost
    order = world.pay()
    orders.refund(order, REASON)
    assert refunds.for_order(order).status == "pending"
    world.state.tamper = None
    world.state.refund_delay = 0.5  # long enough for both workers to see the refund due
    later(monkeypatch, minutes=2)

    start, sent = threading.Barrier(2), []

    def worker():
        db.connect(reuse_if_open=True)
        try:
            start.wait(timeout=30)
            sent.append(refunds.send_due())
        finally:
            db.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(sent) == [0, 1]
    assert len(world.state.refund_calls) == 2  # the lost answer, then exactly one more
    refund = refunds.for_order(order)
    assert (refund.status, refund.attempts) == ("sent", 2)
    assert sent_journals(order) == 1 and in_flight() == 0
    healthy()
