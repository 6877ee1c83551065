"""易支付 (epay): the MD5-signed submit/notify protocol of epay-compatible cashiers
(彩虹易支付 and its many clones), the most common way a small Chinese shop takes Alipay,
WeChat Pay and QQ Wallet.

Submit: the buyer's browser is redirected (GET) to ``<api_url>submit.php`` with

    pid           our merchant id
    type          payment type: alipay, wxpay, qqpay...
    out_trade_no  our order or top-up number
    notify_url    where the epay server calls us back (absolute URL)
    return_url    where the buyer's browser comes back (absolute URL)
    name          what is bought, shown on the cashier
    money         the amount in yuan with two decimals, "10.00"
    sign          see below
    sign_type     "MD5"

Notify: the epay server calls ``notify_url`` (GET, some clones POST a form) with pid,
trade_no (the gateway's own transaction number), out_trade_no, type, name, money,
trade_status, param (optional), sign and sign_type. We answer the plain text ``success``;
anything else makes the gateway try again later.

Sign: every parameter except sign and sign_type whose value is not empty, sorted by name,
joined as ``k=v&k=v`` with the raw (not URL-encoded) values, the merchant key appended directly
(no ``&key=``), then the lowercase hex MD5 of those UTF-8 bytes.

Before a notify credits anything it must prove each of these; every one was a real hole in
shops of this kind. The sign, compared in constant time, and never with an empty merchant key
(anyone can compute md5(params + "")). trade_status TRADE_SUCCESS: notifies of unpaid or
closed trades are signed too. Our pid. The money, parsed exactly to fen, equal to the order's
(`record_payment` checks it against the order, as it checks the order exists). The gateway's
trade_no, which makes a repeated notify credit nothing. The return_url is only the buyer's
browser coming back: it credits nothing.

Refund (optional; epay has no standard refund API, so only when staff set ``refund_url``): the
shop POSTs a form to ``refund_url`` (彩虹易支付: ``<site>/api.php?act=refund``) with

    pid            our merchant id
    key            the merchant key: 彩虹易支付's merchant API authenticates with it, so
                   refund_url must be https (plain http only to a loopback address)
    trade_no       the gateway's number of the payment, from its notify
    out_trade_no   our order number
    out_refund_no  our refund number, the same on every retry: a server that knows the field
                   answers a repeat with the refund it already made
    money          the whole payment in yuan, "10.00"
    timestamp      unix seconds
    sign           the sign above over every field except key; sign_type "MD5"

and believes only this answer: HTTP 200, a JSON object whose ``code`` is exactly
``refund_success_code`` (1 on most epay sites, 0 on a self-hosted 彩虹易支付; a number or a
string of digits), and whose ``trade_no``, ``out_trade_no``, ``out_refund_no`` and ``money``,
each when present, are the ones asked for. Anything else (another code, a redirect, an HTML
page, an answer about another trade or amount, no answer within 15 s) is a failed attempt
the shop retries with the same out_refund_no. ``refund_no`` in the answer, if any, is kept as
the gateway's number for the refund.
"""

import hashlib
import hmac
import ipaddress
import logging
import re
import time
from urllib.parse import urlencode, urlsplit

import flask
import requests
from flask import Response, redirect, url_for

from shop.errors import error_response
from shop.money import AmountError, format_amount, parse_amount
from shop.payments.gateway import Gateway, Refundable, RefundFailed
from shop.payments.service import PaymentError, record_payment, return_path
from shop.plugins import hookimpl, registry

NAME = "epay"
TRADE_SUCCESS = "TRADE_SUCCESS"
UNSIGNED = ("sign", "sign_type")
TYPE_RE = re.compile(r"[a-z0-9_]{1,32}")
MONEY_RE = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")  # "10.00"; no signs, exponents or commas
CODE_RE = re.compile(r"-?[0-9]{1,9}")
REFUND_TIMEOUT = 15  # seconds, for connecting and for the answer
REFUND_ECHOES = ("trade_no", "out_trade_no", "out_refund_no")
log = logging.getLogger(__name__)


class NotifyRefused(ValueError):
    """A notify we do not believe; the reason is logged, the gateway only hears `fail`."""


def sign(params: dict, key: str) -> str:
    """The protocol's signature of `params` (see the module docstring)."""
    payload = "&".join(
        f"{k}={params[k]}" for k in sorted(params) if k not in UNSIGNED and params[k] != ""
    )
    # MD5 is what the protocol fixes; the secret key is what makes it a signature.
    return hashlib.md5((payload + key).encode()).hexdigest()  # noqa: S324


def _types(settings: dict) -> list[str]:
    return [t.strip() for t in str(settings.get("types") or "").split(",") if t.strip()]


def check_can_enable(settings: dict) -> str | None:
    """Why epay cannot be switched on with these settings, or None when it can."""
    return _payment_problem(settings) or _refund_problem(settings)


def _payment_problem(settings: dict) -> str | None:
    """Why epay cannot take payments with these settings, or None when it can."""
    if not settings.get("key"):
        return "an empty merchant key makes signatures forgeable: set the merchant key first"
    if not str(settings.get("pid") or "").strip():
        return "set the merchant ID (pid)"
    url = urlsplit(str(settings.get("api_url") or ""))
    if url.scheme not in ("http", "https") or not url.netloc:
        return "set the cashier URL, e.g. https://pay.example.com/"
    types = _types(settings)
    if not types or not all(TYPE_RE.fullmatch(t) for t in types):
        return "list the payment types as codes separated by commas, e.g. alipay,wxpay"
    return None


def _refund_url(settings: dict) -> str:
    return str(settings.get("refund_url") or "").strip()


def _refund_problem(settings: dict) -> str | None:
    """Why the refund API set cannot be used (none set is no problem: epay then does not
    refund). The merchant key travels in the refund request's body, so plain http is allowed
    only to this machine (the local simulator)."""
    if not _refund_url(settings):
        return None
    url = urlsplit(_refund_url(settings))
    if url.scheme == "https" and url.netloc:
        return None
    if url.scheme == "http" and url.hostname and _is_loopback(url.hostname):
        return None
    return "the refund API URL must be https:// (the merchant key is sent with each refund)"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _settings() -> dict:
    return registry().settings(NAME)


def _verified(raw, settings: dict) -> tuple[str, str, int]:
    """(trade_no, out_trade_no, fen) of a notify that proves everything, else NotifyRefused."""
    if any(len(values) > 1 for values in raw.listvalues()):
        raise NotifyRefused("a parameter is repeated")
    params = raw.to_dict()
    key = settings.get("key") or ""
    if not key:
        raise NotifyRefused("no merchant key is set, so no signature can be trusted")
    if params.get("sign_type", "MD5").upper() != "MD5":
        raise NotifyRefused(f"sign_type {params['sign_type']!r} is not MD5")
    if not hmac.compare_digest(sign(params, key).encode(), params.get("sign", "").encode()):
        raise NotifyRefused("bad signature")
    if params.get("trade_status") != TRADE_SUCCESS:
        raise NotifyRefused(f"trade_status {params.get('trade_status')!r} is not {TRADE_SUCCESS}")
    if params.get("pid") != str(settings.get("pid") or "").strip():
        raise NotifyRefused(f"pid {params.get('pid')!r} is not ours")
    money = params.get("money", "")
    if not MONEY_RE.fullmatch(money):
        raise NotifyRefused(f"money {money!r} is not like 10.00")
    try:
        fen = parse_amount(money)
    except AmountError as exc:
        raise NotifyRefused(f"money: {exc}") from None
    trade_no = params.get("trade_no", "").strip()
    ref = params.get("out_trade_no", "").strip()
    if not trade_no or not ref:
        raise NotifyRefused("trade_no or out_trade_no is missing")
    return trade_no, ref, fen


class EpayGateway(Gateway):
    name = NAME
    title = "易支付 (Alipay / WeChat Pay / QQ Wallet)"

    def ready(self) -> bool:
        return _payment_problem(_settings()) is None

    def start(self, payable):
        """Send the buyer to the cashier. The type is the checkout form's `epay_type` when it
        is one of the configured types, else the first configured one."""
        settings = _settings()
        problem = _payment_problem(settings)
        if problem:  # enabled, then its settings were emptied
            log.error("epay cannot take payments: %s", problem)
            return error_response(
                503, "gateway_unavailable", "This payment method is not available right now."
            )
        types = _types(settings)
        chosen = flask.request.values.get("epay_type", "")
        params = {
            "pid": str(settings["pid"]).strip(),
            "type": chosen if chosen in types else types[0],
            "out_trade_no": payable.ref,
            "notify_url": url_for("payments.notify", name=NAME, _external=True),
            "return_url": url_for("payments.returned", name=NAME, _external=True),
            "name": payable.subject,
            "money": format_amount(payable.amount),
        }
        params["sign"] = sign(params, settings["key"])
        params["sign_type"] = "MD5"
        cashier = str(settings["api_url"]).strip().rstrip("/") + "/submit.php"
        return redirect(f"{cashier}?{urlencode(params)}", 303)

    def handle_notify(self, request):
        raw = request.form if request.method == "POST" else request.args
        try:
            trade_no, ref, fen = _verified(raw, _settings())
            outcome = record_payment(NAME, trade_no, ref, fen)
        except (NotifyRefused, PaymentError) as exc:
            log.warning("epay notify refused (out_trade_no=%r): %s", raw.get("out_trade_no"), exc)
            return Response("fail", status=400, mimetype="text/plain")
        log.info("epay notify %s for %s: %s", trade_no, ref, outcome)
        return Response("success", mimetype="text/plain")

    @property
    def can_refund(self) -> bool:
        """Only when staff set a usable refund API, and payments are set up too."""
        settings = _settings()
        return bool(_refund_url(settings)) and check_can_enable(settings) is None

    def refund(self, refundable: Refundable) -> str:
        """Ask the refund API (see the module docstring) and check its answer strictly."""
        settings = _settings()
        if not _refund_url(settings):
            raise RefundFailed("epay has no refund API set (refund_url)")
        problem = check_can_enable(settings)
        if problem:
            raise RefundFailed(f"epay is not set up: {problem}")
        params = {
            "pid": str(settings["pid"]).strip(),
            "trade_no": refundable.txn_id,
            "out_trade_no": refundable.ref,
            "out_refund_no": refundable.refund_no,
            "money": format_amount(refundable.amount),
            "timestamp": str(int(time.time())),
        }
        params["sign"] = sign(params, settings["key"])
        params["sign_type"] = "MD5"
        try:
            answer = requests.post(
                _refund_url(settings),
                data={**params, "key": settings["key"]},
                timeout=REFUND_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise RefundFailed(f"the refund API did not answer: {type(exc).__name__}") from None
        code = settings.get("refund_success_code", 1)
        return _refund_done(answer, params, refundable.amount, code)

    def handle_return(self, request):
        """The buyer's browser is back. Its query string could be replayed or made up, so it
        credits nothing: the buyer goes to the order's page, which shows what the notify did."""
        return redirect(return_path(request.args.get("out_trade_no", "")), 303)


def _refund_done(answer, asked: dict, amount: int, success_code) -> str:
    """The gateway's refund number if `answer` proves the refund `asked` was made, else
    RefundFailed saying why (shown to staff; the merchant key is never in it)."""
    if answer.status_code != 200:
        raise RefundFailed(f"the refund API answered HTTP {answer.status_code}")
    try:
        data = answer.json()
    except ValueError:
        raise RefundFailed(f"the refund API answered no JSON: {answer.text[:80]!r}") from None
    if not isinstance(data, dict):
        raise RefundFailed("the refund API answered JSON that is not an object")
    code, message = data.get("code"), str(data.get("msg") or "")[:200]
    if _as_code(code) != int(success_code):
        raise RefundFailed(f"the refund API refused (code {code!r}): {message}")
    for field in REFUND_ECHOES:
        if field in data and str(data[field]) != asked[field]:
            raise RefundFailed(f"the refund API answered about {field} {data[field]!r}")
    if "money" in data:
        money = str(data["money"])
        if not MONEY_RE.fullmatch(money) or parse_amount(money, True) != amount:
            raise RefundFailed(f"the refund API answered money {money!r}, not {asked['money']}")
    return str(data.get("refund_no") or "")


def _as_code(code) -> int | None:
    """An answer's code as a number: an int, or a string of digits (PHP sends either)."""
    if type(code) is int:
        return code
    if isinstance(code, str) and CODE_RE.fullmatch(code):
        return int(code)
    return None


@hookimpl
def payment_gateways():
    return [EpayGateway()]
