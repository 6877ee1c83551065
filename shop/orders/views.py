"""The buyer's side of an order: its page, paying, cancelling, confirming receipt, the keys as
a file, the guest look-up and a signed-in customer's history.

Who may open an order: its signed-in owner, staff, or a guest whose session remembers it
(they placed it in this browser, or answered the look-up). Everyone else gets the same 404
as for a number that does not exist, so no page ever confirms that an order exists. Pages
that can show keys send `Cache-Control: no-store`, so no shared cache or back button keeps
them.
"""

import json
from datetime import timedelta

from flask import Blueprint, abort, flash, make_response, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from shop import ledger, themes
from shop.audit import record
from shop.catalog.models import Product
from shop.crypto import blind_index
from shop.orders import service
from shop.orders.forms import LookupForm
from shop.orders.models import Order, OrderEvent
from shop.orders.service import OrderError
from shop.orders.state import StaleOrder
from shop.payments import refunds
from shop.payments import service as payments
from shop.payments.service import PaymentError
from shop.security import throttle
from shop.web import client_ip

bp = Blueprint("orders", __name__)

REMEMBERED_KEY = "orders"
REMEMBERED_MAX = 20
LOOKUP_LIMIT = 10
LOOKUP_WINDOW = timedelta(minutes=15)
HISTORY_PAGE = 20
HISTORY_MAX_PAGE = 10_000


# helpers shared with the product page ------------------------------------------------------


def remember(order_no: str) -> None:
    """Let this browser open a guest order without the look-up form (newest first, capped so
    the session cookie stays small)."""
    kept = [n for n in session.get(REMEMBERED_KEY, []) if n != order_no]
    session[REMEMBERED_KEY] = [order_no, *kept][:REMEMBERED_MAX]


def offered_gateways(signed_in: bool) -> list:
    """The payment methods a buyer may choose. The wallet needs an account to draw from, so
    a guest is never offered it."""
    return [g for g in payments.gateways().values() if signed_in or g.name != "wallet"]


def start_payment(order: Order, gateway_name: str):
    """Hand the buyer to the gateway's cashier; the gateway brings them back to the order.
    Raises PaymentError when the method is not (or no longer) available."""
    return payments.gateway(gateway_name).start(payments.payable_for_order(order))


# access ------------------------------------------------------------------------------------


def _viewer():
    return current_user if current_user.is_authenticated else None


def _find(order_no: str) -> tuple[Order, bool]:
    """The order and whether the viewer is its buyer (staff may look, not act); 404 for
    anyone else."""
    user = _viewer()
    if user is not None:
        order = service.get_for_user(order_no, user)
        if order is not None:
            return order, order.user_id == user.id
    if order_no in session.get(REMEMBERED_KEY, []):
        order = Order.get_or_none(Order.order_no == order_no)
        if order is not None and order.user_id is None:
            return order, True
    abort(404)


def _buyer_order(order_no: str) -> Order:
    order, is_buyer = _find(order_no)
    if not is_buyer:
        abort(403)
    return order


def _items(order: Order, is_buyer: bool) -> list[str]:
    """The delivered keys. Staff reading a customer's keys here leave an audit record, as
    every reveal of a secret must (DESIGN.md invariant 7)."""
    items = service.delivered_items(order)
    if items and not is_buyer:
        record("order.keys.reveal", target=f"order:{order.order_no}", actor=current_user.id)
    return items


def _no_store(response):
    response = make_response(response)
    response.headers["Cache-Control"] = "no-store"
    return response


# the order page ----------------------------------------------------------------------------


def _wallet_balance(order: Order, gateways: list) -> int | None:
    """The buyer's balance when the wallet is offered for this order, shown beside it with a
    top-up link: a buyer it falls short for sees by how much, and where to add the rest."""
    if not any(g.name == "wallet" for g in gateways):
        return None
    return ledger.balance(ledger.user_account(order.user_id, "wallet"))


def _order_page(order: Order, is_buyer: bool, error: str | None = None, status: int = 200):
    events = list(order.events.order_by(OrderEvent.id))
    pending = is_buyer and order.status == "pending"
    gateways = offered_gateways(bool(order.user_id)) if pending else []
    refund = refunds.for_order(order) if order.status == "refunded" else None
    page = themes.render(
        "orders/order.html",
        order=order,
        is_buyer=is_buyer,
        events=events,
        items=_items(order, is_buyer),
        answers=json.loads(order.fields) if order.fields else {},
        gateways=gateways,
        wallet_balance=_wallet_balance(order, gateways),
        refund=refund,
        refund_via=refunds.gateway_title(refund.gateway) if refund else "",
        error=error,
    )
    return _no_store((page, status))


@bp.route("/o/<order_no>")
def show(order_no):
    order, is_buyer = _find(order_no)
    return _order_page(order, is_buyer)


@bp.route("/o/<order_no>/keys.txt")
def keys_txt(order_no):
    """The delivered keys as a text file, one per line, for buyers with many keys."""
    order, is_buyer = _find(order_no)
    items = _items(order, is_buyer)
    if not items:
        abort(404)
    response = make_response("\n".join(items) + "\n")
    response.mimetype = "text/plain"
    response.headers["Content-Disposition"] = f'attachment; filename="{order.order_no}.txt"'
    return _no_store(response)


@bp.route("/o/<order_no>/pay", methods=["POST"])
def pay(order_no):
    order = _buyer_order(order_no)
    name = request.form.get("gateway", "")
    if order.status != "pending":
        return _order_page(order, True, _("This order is not awaiting payment."), 409)
    if name not in {g.name for g in offered_gateways(bool(order.user_id))}:
        return _order_page(order, True, _("Choose one of the payment methods shown."), 400)
    try:
        return start_payment(order, name)
    except (PaymentError, OrderError) as exc:
        return _order_page(order, True, exc.translated(), getattr(exc, "status", 400))


@bp.route("/o/<order_no>/cancel", methods=["POST"])
def cancel(order_no):
    order = _buyer_order(order_no)
    try:
        service.cancel(order, actor=_viewer())
    except (OrderError, StaleOrder):
        return _order_page(order, True, _("Only an unpaid order can be cancelled."), 409)
    flash(_("The order was cancelled."), "info")
    return redirect(url_for(".show", order_no=order.order_no))


@bp.route("/o/<order_no>/confirm", methods=["POST"])
def confirm(order_no):
    """Confirm receipt: the buyer is satisfied, so the escrow settles now."""
    order = _buyer_order(order_no)
    try:
        service.complete(order, actor=_viewer(), reason="confirmed by the buyer")
    except (OrderError, StaleOrder):
        return _order_page(order, True, _("Only a delivered order can be confirmed."), 409)
    flash(_("Thank you! The order is complete."), "success")
    return redirect(url_for(".show", order_no=order.order_no))


# look-up -----------------------------------------------------------------------------------


def _lookup_key(ip: str) -> str:
    return "lookup:" + blind_index("throttle", f"lookup|{ip}")[:48]


@bp.route("/lookup", methods=["GET", "POST"])
def lookup():
    """A guest finds an order again with its number, contact and query password. Every
    wrong answer gets the same message and status, and an address gets a limited number of
    tries per window, so neither a guess nor a leak of one of the three opens an order.

    The try is counted before the slow password check, so parallel requests cannot all slip
    in under the limit; a right answer is then taken back off the count, as only wrong ones
    should use it up (guests behind one shared address still find their orders)."""
    form = LookupForm()
    if not form.validate_on_submit():
        return themes.render("orders/lookup.html", form=form), 400 if form.is_submitted() else 200
    counted = throttle.attempt(_lookup_key(client_ip()), LOOKUP_LIMIT, LOOKUP_WINDOW)
    if not counted.allowed:
        message = _("Too many attempts. Please wait 15 minutes and try again.")
        return themes.render("orders/lookup.html", form=form, error=message), 429
    order = service.lookup_guest(form.order_no.data, form.contact.data, form.query_password.data)
    if order is None:
        message = _("No order matches this number, contact and password.")
        return themes.render("orders/lookup.html", form=form, error=message), 400
    throttle.forgive(counted)
    remember(order.order_no)
    return redirect(url_for(".show", order_no=order.order_no))


# history -----------------------------------------------------------------------------------


@bp.route("/orders")
@login_required
def history():
    """The customer's orders, newest first, with what "buy again" needs: whether the product
    is still on sale, and the quantity and answers of the first purchase."""
    page = min(max(request.args.get("page", 1, type=int), 1), HISTORY_MAX_PAGE)
    rows = list(
        Order.select(Order, Product.id, Product.visible)
        .join(Product)
        .where(Order.user == current_user.id)
        .order_by(Order.id.desc())
        .limit(HISTORY_PAGE + 1)
        .offset((page - 1) * HISTORY_PAGE)
    )
    orders = [(o, json.loads(o.fields) if o.fields else {}) for o in rows[:HISTORY_PAGE]]
    return themes.render(
        "orders/history.html", orders=orders, page=page, has_next=len(rows) > HISTORY_PAGE
    )
