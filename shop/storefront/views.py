"""What customers browse and buy: home, categories, search, the product page and its buy
form, and the wallet.

The product page is the shop's hottest page, so it reads one row (the product joined to its
category, see `browse`) and computes the viewer's price in memory; it writes nothing.
"""

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import format_datetime, format_time
from flask_babel import gettext as _
from flask_login import current_user, login_required

from shop import ledger, themes
from shop.catalog.pricing import unit_price
from shop.distribution.referrals import cookie_referrer_id
from shop.money import AmountError, format_amount, parse_amount
from shop.orders import service as orders
from shop.orders.service import OrderError
from shop.orders.views import offered_gateways, remember, start_payment
from shop.payments import service as payments
from shop.payments.service import PaymentError
from shop.points import service as points
from shop.storefront import browse, pagecache
from shop.storefront.forms import BuyForm, TopUpForm
from shop.web import client_ip

bp = Blueprint("storefront", __name__)
FIELD_PREFIX = "field-"


@bp.app_template_filter("money")
def money(fen: int) -> str:
    """1000 → "¥10.00": amounts are integers of fen everywhere but on screen."""
    return "¥" + format_amount(fen)


@bp.app_template_filter("when")
def when(moment) -> str:
    """A stored (naive UTC) time as the shop's zone reads it: flask-babel converts with the
    zone `shop.localtime` selects."""
    return format_datetime(moment, "yyyy-MM-dd HH:mm") if moment else ""


@bp.app_template_filter("when_seconds")
def when_seconds(moment) -> str:
    """For staff records where the order of events within a minute matters."""
    return format_datetime(moment, "yyyy-MM-dd HH:mm:ss") if moment else ""


@bp.app_template_filter("clock")
def clock(moment) -> str:
    return format_time(moment, "HH:mm zzz") if moment else ""


def _viewer():
    return current_user if current_user.is_authenticated else None


def _prices(products) -> dict[int, int]:
    viewer = _viewer()
    return {p.id: unit_price(p, 1, viewer) for p in products}


@bp.route("/")
@pagecache.for_guests
def home():
    shelves = browse.shelves()
    return themes.render(
        "home.html", shelves=shelves, prices=_prices(p for _c, ps in shelves for p in ps)
    )


@bp.route("/c/<slug>")
@pagecache.for_guests
def category(slug):
    found = browse.category(slug) or abort(404)
    products = browse.category_products(found.id)
    return themes.render(
        "category.html", category=found, products=products, prices=_prices(products)
    )


@bp.route("/search")
def search():
    query = request.args.get("q", "").strip()[: browse.SEARCH_MAX_LENGTH]
    products = browse.search(query)
    return themes.render("search.html", q=query, products=products, prices=_prices(products))


# the product page and buying ---------------------------------------------------------------


def _product_page(product, form, answers=None, error=None, status=200):
    """The product and its buy form. A product this viewer gets for nothing offers no payment
    method (none is needed, and a gateway cannot take 0) and no points, just a button."""
    viewer = _viewer()
    price = unit_price(product, 1, viewer)
    free = product.free and price == 0
    page = themes.render(
        "product.html",
        product=product,
        category=product.category if product.category_id else None,
        form=form,
        answers=answers or {},
        error=error,
        price=price,
        free=free,
        tiers=[(n, unit_price(product, n, viewer)) for n, _unit in sorted(product.tiers)],
        gateways=[] if free else offered_gateways(viewer is not None),
        points=None if free else points.offer(viewer),
    )
    return page, status


@bp.route("/p/<int:product_id>")
@pagecache.for_guests
def product(product_id):
    found = browse.product(product_id) or abort(404)
    form = BuyForm()
    form.quantity.data = str(found.min_qty)
    return _product_page(found, form)


@bp.route("/p/<int:product_id>/buy", methods=["POST"])
def buy(product_id):
    """Place the order at the server's price (nothing the client sends is a price), then go
    to the chosen gateway, or to the order page when none was chosen (e.g. "buy again") or
    there was nothing to pay (a free order is delivered as it is placed).
    A refusal shows the product page again with the reason; nothing is created."""
    found = browse.product(product_id) or abort(404)
    form = BuyForm()
    answers = {
        spec["name"]: request.form.get(FIELD_PREFIX + spec["name"], "") for spec in found.fields
    }
    viewer = _viewer()
    if not form.validate_on_submit():
        return _product_page(found, form, answers, _("Check the form and try again."), 400)
    gateway = form.gateway.data or ""
    if gateway and gateway not in {g.name for g in offered_gateways(viewer is not None)}:
        return _product_page(found, form, answers, _("Choose one of the payment methods."), 400)
    try:
        order = orders.place_order(
            found.id,
            form.quantity.data,
            user=viewer,
            contact=form.contact.data,
            query_password=form.query_password.data,
            fields=answers,
            gateway=gateway,
            ip=client_ip(),
            # a guest's invite cookie credits the referrer chain; a member's is bound already
            referrer_id=None if viewer else cookie_referrer_id(request.cookies),
            points=form.points.data,
        )
    except (OrderError, points.PointsError) as exc:
        if exc.status == 404:
            abort(404)
        return _product_page(found, form, answers, exc.translated(), exc.status)
    if viewer is None:
        remember(order.order_no)
    if gateway and order.status == "pending":
        try:
            return start_payment(order, gateway)
        except PaymentError as exc:
            flash(exc.translated(), "error")
    return redirect(url_for("orders.show", order_no=order.order_no))


# the wallet --------------------------------------------------------------------------------


@bp.route("/wallet", methods=["GET", "POST"])
@login_required
def wallet():
    """The balance, a top-up through any gateway that can take one (not the wallet), and the
    orders waiting to be paid, to go back to once the balance covers them."""
    offered = [g for g in payments.gateways().values() if g.supports_topup and g.name != "wallet"]
    form = TopUpForm()
    form.gateway.choices = [(g.name, g.title) for g in offered]
    if request.method == "GET" and offered:
        form.gateway.data = offered[0].name
    status = 400 if form.is_submitted() else 200
    if form.validate_on_submit():
        try:
            topup = payments.create_topup(
                current_user, parse_amount(form.amount.data), form.gateway.data
            )
            return payments.gateway(topup.gateway).start(payments.payable_for_topup(topup))
        except (AmountError, PaymentError) as exc:
            form.amount.errors = [exc.translated()]
    balance = ledger.balance(ledger.user_account(current_user.id, "wallet"))
    unpaid = orders.awaiting_payment(current_user)
    page = themes.render("wallet.html", form=form, balance=balance, offered=offered, unpaid=unpaid)
    return page, status
