"""A tiny local 易支付 (epay) cashier for tests and demos. No money moves.

    python plugins/epay/simulator.py --port 5050 --pid 1001 --key SECRET
    python -m plugins.epay.simulator --port 5050 --pid 1001     # from the project root,
                                                                 # key in EPAY_SIM_KEY

It serves ``submit.php`` as an epay site does: it refuses a request with another pid or a bad
sign, shows a cashier page with the order's name and amount, and on "Pay" calls the shop's
notify_url with a correctly signed TRADE_SUCCESS notify (GET, as 彩虹易支付 does), then sends
the buyer's browser to return_url with the same parameters.

It also serves the refund API the plugin speaks (``POST /api.php?act=refund``, see the
plugin's docstring) for the trades paid at it: it checks pid, key and sign, refunds at most
what was paid, and answers a repeated out_refund_no with the refund it already made. Its
`SimulatorState` (``app.extensions["epay_simulator"]``) lets tests count the refund calls,
slow them down, or rewrite the answer to play a broken or forged gateway.

It signs with its own few lines rather than importing the plugin's `sign`: it stands for the
other side of the protocol, and sharing that code would hide a bug in it. It needs only Flask
and requests, so it runs without the shop.
"""

import argparse
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

import requests
from flask import Flask, jsonify, redirect, render_template_string, request

SUBMIT_FIELDS = ("pid", "type", "out_trade_no", "notify_url", "return_url", "name", "money")
MONEY_RE = re.compile(r"[0-9]+\.[0-9]{2}")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Epay simulator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
.amount{font-size:2rem}.note{color:#a40}</style></head><body>
<p class="note">Epay simulator: no real money moves.</p>
{% if error %}<h1>Refused</h1><p>{{ error }}</p>
{% if back %}<p><a href="{{ back }}">Back to the shop</a></p>{% endif %}
{% else %}<h1>{{ p.name }}</h1>
<p class="amount">¥{{ p.money }}</p>
<p>Order {{ p.out_trade_no }} · {{ p.type or "any method" }} · merchant {{ p.pid }}</p>
<form method="post" action="{{ url_for('pay') }}">
{% for k, v in p.items() %}<input type="hidden" name="{{ k }}" value="{{ v }}">
{% endfor %}<button type="submit">Pay</button></form>{% endif %}
</body></html>"""


def epay_sign(params: dict, key: str) -> str:
    """Non-empty params except sign and sign_type, sorted, k=v&k=v, key appended, MD5 hex."""
    pairs = sorted((k, v) for k, v in params.items() if k not in ("sign", "sign_type") and v)
    text = "&".join(f"{k}={v}" for k, v in pairs) + key
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (the protocol's MD5)


def http_get(url: str, params: dict) -> tuple[int, str]:
    answer = requests.get(url, params=params, timeout=10)
    return answer.status_code, answer.text


@dataclass
class SimulatorState:
    """What the cashier remembers (in memory only) and the knobs tests turn."""

    refund_code: int = 1  # the code a successful refund answers with
    trades: dict = field(default_factory=dict)  # trade_no -> out_trade_no, money, refunded
    refunds: dict = field(default_factory=dict)  # out_refund_no -> (trade_no, money, answer)
    refund_calls: list = field(default_factory=list)  # the form of every refund request
    refund_delay: float = 0.0  # seconds each refund request takes
    # rewrites each refund answer (a dict, or a str sent as text): a broken or forged gateway
    tamper: Callable | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _cents(money: str) -> int:
    return int(Decimal(money) * 100)


def create_simulator(pid: str, key: str, call_notify=http_get, refund_code: int = 1) -> Flask:
    """The cashier app. `call_notify(url, params) -> (status, body)` reaches the shop; tests
    pass one that goes through the shop's test client."""
    app = Flask(__name__)
    state = app.extensions["epay_simulator"] = SimulatorState(refund_code=refund_code)

    def refused(params: dict) -> str | None:
        missing = [f for f in SUBMIT_FIELDS if not params.get(f)]
        if missing:
            return f"missing {', '.join(missing)}"
        if params["pid"] != pid:
            return f"unknown merchant {params['pid']}"
        if not MONEY_RE.fullmatch(params["money"]):
            return f"money {params['money']!r} is not like 10.00"
        if not hmac.compare_digest(epay_sign(params, key), params.get("sign", "")):
            return "bad sign"
        return None

    def page(status=200, **context):
        return render_template_string(PAGE, **context), status

    @app.route("/submit.php", methods=["GET", "POST"])
    def submit():
        params = request.values.to_dict()
        problem = refused(params)
        if problem:
            return page(400, error=problem)
        return page(p=params)

    @app.post("/pay")
    def pay():
        params = request.form.to_dict()
        problem = refused(params)
        if problem:
            return page(400, error=problem)
        notify = {
            "pid": pid,
            "trade_no": f"SIM{time.strftime('%Y%m%d%H%M%S')}{secrets.randbelow(10**6):06d}",
            "out_trade_no": params["out_trade_no"],
            "type": params["type"],
            "name": params["name"],
            "money": params["money"],
            "trade_status": "TRADE_SUCCESS",
            "param": params.get("param", ""),
        }
        notify["sign"] = epay_sign(notify, key)
        notify["sign_type"] = "MD5"
        with state.lock:
            state.trades[notify["trade_no"]] = {
                "out_trade_no": notify["out_trade_no"],
                "money": _cents(notify["money"]),
                "refunded": 0,
            }
        status, body = call_notify(params["notify_url"], notify)
        back = params["return_url"] + ("&" if "?" in params["return_url"] else "?")
        back += urlencode(notify)
        if body.strip() != "success":
            return page(502, error=f"the shop answered {status} {body.strip()[:200]!r}", back=back)
        return redirect(back, 303)

    @app.post("/api.php")
    def api():
        form = request.form.to_dict()
        with state.lock:
            state.refund_calls.append(form)
        time.sleep(state.refund_delay)
        if request.values.get("act") != "refund":
            return jsonify(code=-5, msg="No Act!")
        answer = refund(form)
        if state.tamper is not None:
            answer = state.tamper(answer)
        return jsonify(answer) if isinstance(answer, dict) else answer

    def refund(form: dict) -> dict:
        """A refund as the plugin asks for it; refusals answer code -1 as 彩虹易支付 does."""
        if form.get("pid") != pid or not hmac.compare_digest(form.get("key", ""), key):
            return {"code": -3, "msg": "商户ID或密钥错误"}
        signed = {k: v for k, v in form.items() if k != "key"}
        if not hmac.compare_digest(epay_sign(signed, key), form.get("sign", "")):
            return {"code": -3, "msg": "签名错误"}
        money, out_refund_no = form.get("money", ""), form.get("out_refund_no", "")
        if not MONEY_RE.fullmatch(money) or _cents(money) <= 0:
            return {"code": -1, "msg": "金额输入错误"}
        with state.lock:
            trade_no = form.get("trade_no", "")
            trade = state.trades.get(trade_no)
            if trade is None or trade["out_trade_no"] != form.get("out_trade_no"):
                return {"code": -1, "msg": "当前订单不存在！"}
            if out_refund_no in state.refunds:
                done_trade, done_money, answer = state.refunds[out_refund_no]
                if (done_trade, done_money) == (trade_no, money):
                    return answer
                return {"code": -1, "msg": "商户退款单号已用于另一笔退款"}
            if trade["refunded"] + _cents(money) > trade["money"]:
                return {"code": -1, "msg": "退款金额超过该订单剩余可退款金额！"}
            trade["refunded"] += _cents(money)
            answer = {
                "code": state.refund_code,
                "msg": f"退款成功！退款金额￥{money}",
                "trade_no": trade_no,
                "out_trade_no": trade["out_trade_no"],
                "out_refund_no": out_refund_no,
                "refund_no": f"RF{time.strftime('%Y%m%d%H%M%S')}{secrets.randbelow(10**5):05d}",
                "money": money,
            }
            if out_refund_no:
                state.refunds[out_refund_no] = (trade_no, money, answer)
            return answer

    return app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="A local epay cashier for tests and demos.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5050)
    parser.add_argument("--pid", required=True, help="the merchant id the shop is set up with")
    parser.add_argument(
        "--key",
        default=os.environ.get("EPAY_SIM_KEY", ""),
        help="the merchant key the shop is set up with (default: $EPAY_SIM_KEY)",
    )
    parser.add_argument(
        "--refund-code",
        type=int,
        default=1,
        help="the code a successful refund answers with (default 1; 彩虹易支付 itself: 0)",
    )
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("give the merchant key with --key or EPAY_SIM_KEY")
    app = create_simulator(args.pid, args.key, refund_code=args.refund_code)
    app.run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
