"""The epay (易支付) gateway: the submit redirect against the protocol, notifies that must
prove everything before a fen moves, and duplicate notifies, sequential and concurrent against
the real server on SQLite and PostgreSQL."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from paying import (
    EPAY_KEY,
    EPAY_PID,
    add_checkout_stand_in,
    configure_epay,
    epay_notify,
    md5_sign,
)
from selling import balance, card_product, customer

from shop import crypto, invariants, ledger
from shop.inventory.models import CardKey
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import service as payments
from shop.payments.models import Payment, TopUp
from shop.plugins import PluginError, registry

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def shop(app, owner):
    add_checkout_stand_in(app)
    configure_epay(app)
    with app.app_context():
        yield app


def guest_order(product, qty=1):
    return orders.place_order(
        product.id, qty, contact="guest@example.com", query_password="open-sesame"
    )


def escrow() -> int:
    return balance(ledger.system_account("escrow"))


def sold_keys() -> int:
    return CardKey.select().where(CardKey.state == "sold").count()


def unchanged(order) -> None:
    """A refused notify left no trace: the order waits, no payment, no money, no key sold."""
    assert Order.get_by_id(order.id).status == "pending"
    assert Payment.select().count() == 0
    assert escrow() == 0
    assert balance(ledger.system_account("gateway:epay")) == 0
    assert sold_keys() == 0


def healthy():
    assert {k: v for k, v in invariants.run_all().items() if v} == {}


# the signature ----------------------------------------------------------------------------


def test_sign_matches_the_protocol_on_a_worked_example(app):
    sign = registry().info("epay").module.sign
    params = {
        "pid": "1001",
        "type": "alipay",
        "out_trade_no": "K1",
        "notify_url": "http://x.test/n",
        "return_url": "http://x.test/r",
        "name": "VIP会员",
        "money": "1.00",
        "param": "",
        "sign": "ignored",
        "sign_type": "MD5",
    }
    text = (
        "money=1.00&name=VIP会员&notify_url=http://x.test/n&out_trade_no=K1&pid=1001"
        "&return_url=http://x.test/r&type=alipayabc"
    )
    assert sign(params, "abc") == hashlib.md5(text.encode()).hexdigest()  # noqa: S324


# enabling ---------------------------------------------------------------------------------


def test_epay_cannot_be_enabled_without_a_merchant_key(app, owner):
    with app.app_context():
        reg = registry()
        reg.save_settings("epay", {"api_url": "https://pay.example.com/", "pid": "1001"})
        with pytest.raises(PluginError, match="empty merchant key makes signatures forgeable"):
            reg.set_enabled("epay", True)
        assert not reg.is_enabled("epay")
        reg.save_settings("epay", {"key": EPAY_KEY, "pid": ""})
        with pytest.raises(PluginError, match="pid"):
            reg.set_enabled("epay", True)
        reg.save_settings("epay", {"pid": "1001", "api_url": "pay.example.com"})
        with pytest.raises(PluginError, match="cashier URL"):
            reg.set_enabled("epay", True)
        reg.save_settings("epay", {"api_url": "https://pay.example.com/"})
        reg.set_enabled("epay", True)
        assert "epay" in payments.gateways()


def test_cli_sets_the_merchant_key_from_stdin_and_keeps_it_encrypted(app, owner):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["shop", "plugins", "set", "epay", "pid=1001", "key=-", "--json"],
        input=EPAY_KEY + "\n",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["settings"]["key"] == "***" and out["settings"]["pid"] == "1001"
    assert EPAY_KEY not in result.output
    with app.app_context():
        from shop.plugins.models import PluginState

        assert EPAY_KEY not in PluginState.get_by_id("epay").settings
        assert registry().settings("epay")["key"] == EPAY_KEY
    bad = runner.invoke(args=["shop", "plugins", "set", "epay", "pid", "--json"])
    assert bad.exit_code == 2 and json.loads(bad.output)["error"]["code"] == "bad_setting"


# submit -----------------------------------------------------------------------------------


def test_submit_redirects_to_the_cashier_with_exactly_the_protocol_params(shop, client):
    order = guest_order(card_product(keys=3, price=1005), 2)
    answer = client.get(f"/test/pay/{order.order_no}/epay")
    assert answer.status_code == 303
    url = urlsplit(answer.headers["Location"])
    assert (url.scheme, url.netloc, url.path) == ("https", "pay.example.com", "/submit.php")
    query = parse_qs(url.query, keep_blank_values=True)
    assert all(len(v) == 1 for v in query.values())
    params = {k: v[0] for k, v in query.items()}
    expected = {
        "pid": EPAY_PID,
        "type": "alipay",
        "out_trade_no": order.order_no,
        "notify_url": "http://localhost/pay/epay/notify",
        "return_url": "http://localhost/pay/epay/return",
        "name": "Game Card 10 x2",
        "money": "20.10",
        "sign_type": "MD5",
    }
    assert {k: v for k, v in params.items() if k != "sign"} == expected
    assert params["sign"] == md5_sign(expected, EPAY_KEY)
    assert Order.get_by_id(order.id).status == "pending"  # sending the buyer away pays nothing


def test_submit_uses_the_buyers_type_only_when_it_is_configured(shop, client):
    order = guest_order(card_product())

    def chosen(type_):
        answer = client.get(f"/test/pay/{order.order_no}/epay?epay_type={type_}")
        params = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
        assert params["sign"] == md5_sign(params, EPAY_KEY)
        return params["type"]

    assert chosen("wxpay") == "wxpay"
    assert chosen("qqpay") == "alipay"  # not in this shop's list
    assert chosen("") == "alipay"


# notify -----------------------------------------------------------------------------------


def test_notify_credits_delivers_and_a_repeat_credits_nothing(shop, client):
    order = guest_order(card_product(price=1000))
    notify = epay_notify(order.order_no, "10.00")
    answer = client.get("/pay/epay/notify", query_string=notify)
    assert (answer.status_code, answer.get_data(as_text=True)) == (200, "success")
    assert answer.mimetype == "text/plain"
    order = Order.get_by_id(order.id)
    assert order.status == "delivered" and order.gateway == "epay"
    (secret,) = orders.delivered_items(order)

    # the gateway repeats itself, this time as a form POST without any CSRF token
    again = client.post("/pay/epay/notify", data=notify)
    assert (again.status_code, again.get_data(as_text=True)) == (200, "success")
    (payment,) = Payment.select()
    assert (payment.gateway, payment.txn_id, payment.amount) == ("epay", notify["trade_no"], 1000)
    assert escrow() == 1000
    assert balance(ledger.system_account("gateway:epay")) == -1000
    assert sold_keys() == 1
    assert orders.delivered_items(Order.get_by_id(order.id)) == [secret]
    healthy()


def test_notify_with_a_forged_sign_changes_nothing(shop, client):
    order = guest_order(card_product(price=1000))
    for forged in (
        epay_notify(order.order_no, "10.00", key="guessed-key"),
        epay_notify(order.order_no, "10.00", key=""),
        {**epay_notify(order.order_no, "10.00"), "sign": ""},
        {k: v for k, v in epay_notify(order.order_no, "10.00").items() if k != "sign"},
        {**epay_notify(order.order_no, "10.00"), "sign": "é" * 32},
        {**epay_notify(order.order_no, "1.00"), "money": "10.00"},  # signed for 1.00
    ):
        answer = client.get("/pay/epay/notify", query_string=forged)
        assert (answer.status_code, answer.get_data(as_text=True)) == (400, "fail")
    unchanged(order)


@pytest.mark.parametrize(
    "fields",
    [
        {"trade_status": "WAIT_BUYER_PAY"},
        {"trade_status": "TRADE_CLOSED"},
        {"trade_status": ""},
        {"money": "9.99"},
        {"money": "10.01"},
        {"money": "10.001"},
        {"money": "1e1"},
        {"money": "-10.00"},
        {"money": "ten"},
        {"pid": "1002"},
        {"out_trade_no": "K241101NOSUCHORDER"},
        {"trade_no": ""},
        {"trade_no": "x" * 200},
    ],
    ids=lambda fields: ",".join(f"{k}={v[:12]}" for k, v in fields.items()),
)
def test_a_correctly_signed_notify_that_does_not_prove_payment_changes_nothing(
    shop, client, fields
):
    order = guest_order(card_product(price=1000))
    notify = epay_notify(order.order_no, **{"money": "10.00", **fields})
    answer = client.get("/pay/epay/notify", query_string=notify)
    assert (answer.status_code, answer.get_data(as_text=True)) == (400, "fail")
    unchanged(order)


def test_a_repeated_parameter_or_another_sign_type_is_refused(shop, client):
    order = guest_order(card_product(price=1000))
    notify = epay_notify(order.order_no, "10.00")
    doubled = list(notify.items()) + [("money", "0.01")]
    assert client.get("/pay/epay/notify", query_string=doubled).status_code == 400
    rsa = {**notify, "sign_type": "RSA"}
    assert client.get("/pay/epay/notify", query_string=rsa).status_code == 400
    unchanged(order)


def test_a_second_trade_for_a_paid_order_goes_back_to_the_payer_never_more_keys(shop, client):
    buyer = customer()
    order = orders.place_order(card_product(keys=5, price=1000).id, 1, user=buyer)
    first = epay_notify(order.order_no, "10.00", trade_no="T-FIRST")
    second = epay_notify(order.order_no, "10.00", trade_no="T-SECOND")
    assert client.get("/pay/epay/notify", query_string=first).get_data(as_text=True) == "success"
    assert client.get("/pay/epay/notify", query_string=second).get_data(as_text=True) == "success"
    assert [p.outcome for p in Payment.select().order_by(Payment.id)] == ["paid", "duplicate"]
    assert escrow() == 1000
    assert balance(ledger.user_account(buyer.id, "wallet")) == 1000  # the second payment, back
    assert balance(ledger.system_account("gateway:epay")) == -2000
    assert sold_keys() == 1
    assert len(orders.delivered_items(Order.get_by_id(order.id))) == 1
    healthy()


def test_a_guests_second_trade_waits_in_the_refund_queue(shop, client):
    order = guest_order(card_product(price=1000))
    for trade_no in ("T-1", "T-2"):
        notify = epay_notify(order.order_no, "10.00", trade_no=trade_no)
        assert client.get("/pay/epay/notify", query_string=notify).status_code == 200
    assert balance(ledger.system_account("refunds_payable")) == 1000
    assert escrow() == 1000 and sold_keys() == 1


def test_notify_tops_a_wallet_up(shop, client):
    buyer = customer()
    topup = payments.create_topup(buyer, 5000, "epay")
    answer = client.get(f"/test/topup/{topup.topup_no}/epay")
    params = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert params["out_trade_no"] == [topup.topup_no] and params["money"] == ["50.00"]
    notify = epay_notify(topup.topup_no, "50.00")
    assert client.get("/pay/epay/notify", query_string=notify).get_data(as_text=True) == "success"
    assert client.get("/pay/epay/notify", query_string=notify).get_data(as_text=True) == "success"
    assert TopUp.get_by_id(topup.id).status == "paid"
    assert balance(ledger.user_account(buyer.id, "wallet")) == 5000
    healthy()


def test_notify_is_404_while_epay_is_disabled(shop, client):
    order = guest_order(card_product(price=1000))
    registry().set_enabled("epay", False)
    answer = client.get("/pay/epay/notify", query_string=epay_notify(order.order_no, "10.00"))
    assert answer.status_code == 404
    unchanged(order)


# return -----------------------------------------------------------------------------------


def test_the_buyers_return_credits_nothing_and_lands_on_the_order(shop, client):
    order = guest_order(card_product(price=1000))
    # even a validly signed success in the browser's address bar is not a payment
    back = client.get("/pay/epay/return", query_string=epay_notify(order.order_no, "10.00"))
    assert (back.status_code, back.headers["Location"]) == (303, f"/o/{order.order_no}")
    unchanged(order)
    topup = payments.create_topup(customer(), 1000, "epay")
    back = client.get("/pay/epay/return", query_string={"out_trade_no": topup.topup_no})
    assert back.headers["Location"] == "/wallet"
    back = client.get("/pay/epay/return", query_string={"out_trade_no": "https://evil.test/"})
    assert back.headers["Location"] == "/"


# concurrent duplicate notifies against the real server --------------------------------------


MASTER_KEY = "ab" * 32


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            requests.get(url, timeout=2, allow_redirects=False)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer within 60 s:\n{log.read_text()[-3000:]}")


@pytest.mark.pg
def test_concurrent_duplicate_notifies_credit_once_on_the_real_server(database, db_url, tmp_path):
    env = {
        **os.environ,
        "SHOP_INSTANCE": str(tmp_path / "instance"),
        "SHOP_DATABASE_URL": db_url,
        "SHOP_MASTER_KEY": MASTER_KEY,
        "SHOP_SECRET_KEY": "s" * 64,
    }
    env.pop("SHOP_SAFE_MODE", None)

    def shop_cli(*args, stdin=None):
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "shop", *args, "--json"],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    shop_cli("init", "--admin-email", "owner@example.com", "--admin-password", "owner-pass-1")
    settings = ["api_url=https://pay.example.com/", f"pid={EPAY_PID}", "key=-"]
    shop_cli("plugins", "set", "epay", *settings, stdin=EPAY_KEY + "\n")
    assert shop_cli("plugins", "enable", "epay") == {"name": "epay", "enabled": True}

    crypto.configure(bytes.fromhex(MASTER_KEY))
    order = guest_order(card_product(keys=3, price=1000), 2)

    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), "--workers", "3", "--no-worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(base + "/", server, log)
        notify = epay_notify(order.order_no, "20.00", trade_no="2024110199990001")
        start = threading.Barrier(20)

        def deliver_notify(_):
            start.wait()
            answer = requests.get(base + "/pay/epay/notify", params=notify, timeout=60)
            return answer.status_code, answer.text

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(deliver_notify, range(20)))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    assert answers == [(200, "success")] * 20, log.read_text()[-3000:]
    (payment,) = Payment.select()
    assert (payment.txn_id, payment.amount, payment.outcome) == (notify["trade_no"], 2000, "paid")
    assert escrow() == 2000
    assert balance(ledger.system_account("gateway:epay")) == -2000
    assert balance(ledger.system_account("refunds_payable")) == 0
    order = Order.get_by_id(order.id)
    assert order.status == "delivered"
    assert sold_keys() == 2 and len(set(orders.delivered_items(order))) == 2
    healthy()
