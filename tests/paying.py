"""Helpers for payment tests: a stand-in for the checkout's call into a gateway, epay set up,
and the epay signature computed here, independently of the plugin's code."""

import hashlib
import html
import re

from shop.orders.models import Order
from shop.payments import service as payments
from shop.payments.models import TopUp
from shop.plugins import registry

EPAY_PID = "1001"
EPAY_KEY = "mk-7Qd2-merchant-key"
EPAY_CASHIER = "https://pay.example.com/"
HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def add_checkout_stand_in(app) -> None:
    """The storefront's checkout is built elsewhere; like it will, these routes hand a pending
    order (or top-up) to the chosen gateway and answer with the gateway's response."""

    def pay_order(order_no, name):
        order = Order.get(Order.order_no == order_no)
        return payments.gateway(name).start(payments.payable_for_order(order))

    def pay_topup(topup_no, name):
        topup = TopUp.get(TopUp.topup_no == topup_no)
        return payments.gateway(name).start(payments.payable_for_topup(topup))

    app.add_url_rule("/test/pay/<order_no>/<name>", "test_pay", pay_order)
    app.add_url_rule("/test/topup/<topup_no>/<name>", "test_topup", pay_topup)


def md5_sign(params: dict, key: str) -> str:
    """易支付's sign, written from the protocol text: drop sign, sign_type and empty values,
    sort by name, k=v joined by &, the key appended as is, lowercase hex MD5."""
    kept = {k: v for k, v in params.items() if k not in ("sign", "sign_type") and v != ""}
    text = "&".join(k + "=" + kept[k] for k in sorted(kept)) + key
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 (the protocol's MD5)


def epay_notify(order_no: str, money: str, key: str = EPAY_KEY, **fields) -> dict:
    """A notify as the epay server sends it for a paid trade, signed with `key`."""
    params = {
        "pid": EPAY_PID,
        "trade_no": "2024110112000012345",
        "out_trade_no": order_no,
        "type": "alipay",
        "name": "Game Card 10",
        "money": money,
        "trade_status": "TRADE_SUCCESS",
        "param": "",
        **fields,
    }
    params["sign"] = md5_sign(params, key)
    params["sign_type"] = "MD5"
    return params


def configure_epay(app, enable: bool = True, api_url: str = EPAY_CASHIER) -> None:
    with app.app_context():
        reg = registry()
        reg.save_settings(
            "epay", {"api_url": api_url, "pid": EPAY_PID, "key": EPAY_KEY, "types": "alipay,wxpay"}
        )
        if enable:
            reg.set_enabled("epay", True)


def form_fields(page) -> dict:
    """The hidden fields of the simulator's cashier page: what its Pay button posts."""
    return {k: html.unescape(v) for k, v in HIDDEN_RE.findall(page.get_data(as_text=True))}
