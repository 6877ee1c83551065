"""The epay simulator end to end against the shop: both Flask apps in this process, the
simulator's server-to-server notify wired to the shop's test client, the buyer's browser
played by following each redirect by hand."""

import importlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from paying import EPAY_KEY, EPAY_PID, add_checkout_stand_in, configure_epay, form_fields
from selling import balance, card_product

from shop import ledger
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments.models import Payment
from shop.plugins import registry

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def world(app, owner):
    """(shop client, simulator client, notifies the simulator sent)."""
    configure_epay(app, api_url="http://cashier.test/")
    add_checkout_stand_in(app)
    shop = app.test_client()
    sent = []

    def call_notify(url, params):
        sent.append(params)
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("http", "localhost")
        answer = shop.get(parts.path, query_string=params)
        return answer.status_code, answer.get_data(as_text=True)

    simulator = importlib.import_module("kashop_plugins.epay.simulator")
    cashier = simulator.create_simulator(EPAY_PID, EPAY_KEY, call_notify).test_client()
    with app.app_context():
        yield shop, cashier, sent


def to_cashier(shop, cashier, order):
    """The buyer chooses epay and follows the shop's redirect to the cashier page."""
    start = shop.get(f"/test/pay/{order.order_no}/epay")
    url = urlsplit(start.headers["Location"])
    assert (url.netloc, url.path) == ("cashier.test", "/submit.php")
    return cashier.get(f"{url.path}?{url.query}")


def guest_order(price=1000):
    product = card_product(price=price)
    return orders.place_order(
        product.id, 1, contact="guest@example.com", query_password="open-sesame"
    )


def test_paying_at_the_simulator_delivers_the_order_once(world):
    shop, cashier, sent = world
    order = guest_order(price=1234)
    page = to_cashier(shop, cashier, order)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Game Card 10" in text and "¥12.34" in text and order.order_no in text

    paid = cashier.post("/pay", data=form_fields(page))
    assert paid.status_code == 303
    (notify,) = sent
    assert notify["trade_status"] == "TRADE_SUCCESS" and notify["money"] == "12.34"
    order = Order.get_by_id(order.id)
    assert order.status == "delivered" and len(orders.delivered_items(order)) == 1
    (payment,) = Payment.select()
    assert (payment.gateway, payment.txn_id, payment.amount) == ("epay", notify["trade_no"], 1234)
    assert balance(ledger.system_account("escrow")) == 1234

    back = urlsplit(paid.headers["Location"])
    assert (back.netloc, back.path) == ("localhost", "/pay/epay/return")
    landing = shop.get(f"{back.path}?{back.query}")
    assert (landing.status_code, landing.headers["Location"]) == (303, f"/o/{order.order_no}")
    assert Payment.select().count() == 1  # coming back credited nothing more


def test_the_simulator_refuses_what_the_shop_did_not_sign(world):
    shop, cashier, sent = world
    order = guest_order()
    fields = form_fields(to_cashier(shop, cashier, order))
    cheaper = {**fields, "money": "0.01"}
    assert cashier.get("/submit.php", query_string=cheaper).status_code == 400
    assert cashier.post("/pay", data=cheaper).status_code == 400
    assert cashier.post("/pay", data={**fields, "pid": "9999"}).status_code == 400
    assert sent == []
    assert Order.get_by_id(order.id).status == "pending"


def test_the_simulator_shows_a_shop_that_did_not_answer_success(world):
    shop, cashier, sent = world
    order = guest_order()
    fields = form_fields(to_cashier(shop, cashier, order))
    registry().set_enabled("epay", False)  # the shop now answers its notify with 404
    answer = cashier.post("/pay", data=fields)
    assert answer.status_code == 502
    assert "the shop answered 404" in answer.get_data(as_text=True)
    assert len(sent) == 1 and Payment.select().count() == 0


def test_the_simulator_runs_on_its_own_and_needs_the_key():
    script = ROOT / "plugins" / "epay" / "simulator.py"
    helped = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0 and "--pid" in helped.stdout
    keyless = subprocess.run(
        [sys.executable, "-m", "plugins.epay.simulator", "--pid", "1001"],
        cwd=ROOT,
        env={**os.environ, "EPAY_SIM_KEY": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert keyless.returncode == 2 and "merchant key" in keyless.stderr
