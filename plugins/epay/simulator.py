"""A tiny local 易支付 (epay) cashier for tests and demos. No money moves.

    python plugins/epay/simulator.py --port 5050 --pid 1001 --key SECRET
    python -m plugins.epay.simulator --port 5050 --pid 1001     # from the project root,
                                                                 # key in EPAY_SIM_KEY

It serves ``submit.php`` as an epay site does: it refuses a request with another pid or a bad
sign, shows a cashier page with the order's name and amount, and on "Pay" calls the shop's
notify_url with a correctly signed TRADE_SUCCESS notify (GET, as 彩虹易支付 does), then sends
the buyer's browser to return_url with the same parameters.

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
import time
from urllib.parse import urlencode

import requests
from flask import Flask, redirect, render_template_string, request

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


def create_simulator(pid: str, key: str, call_notify=http_get) -> Flask:
    """The cashier app. `call_notify(url, params) -> (status, body)` reaches the shop; tests
    pass one that goes through the shop's test client."""
    app = Flask(__name__)

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
        status, body = call_notify(params["notify_url"], notify)
        back = params["return_url"] + ("&" if "?" in params["return_url"] else "?")
        back += urlencode(notify)
        if body.strip() != "success":
            return page(502, error=f"the shop answered {status} {body.strip()[:200]!r}", back=back)
        return redirect(back, 303)

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
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("give the merchant key with --key or EPAY_SIM_KEY")
    create_simulator(args.pid, args.key).run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
