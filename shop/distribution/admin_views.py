"""Admin pages for distribution: commission rates (the shop's and each product's), totals, and
one user's upline, downline and commission, where staff may change the user's referrer and
the owner the user's role.

Routes join the admin blueprint; each POST calls one service function and a refusal shows the
page again with the reason and a 400.
"""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from peewee import fn

from shop import settings
from shop.accounts import service as accounts
from shop.accounts.models import User
from shop.admin.nav import nav_item
from shop.admin.views import bp, staff_required
from shop.audit.models import AuditLog
from shop.catalog.models import Product
from shop.crypto import mask_email, mask_phone
from shop.distribution import overview, rates, referrals
from shop.distribution.models import ProductRates
from shop.ledger.models import Account
from shop.messages import Refusal

nav_item(_l("Distribution"), "admin.distribution_page", 60)
UPLINE_SHOWN = 20


def _totals() -> dict[str, int]:
    """Commission held across all users, by kind; debts as a positive amount owed."""
    sums = dict(
        Account.select(Account.kind, fn.SUM(Account.balance))
        .where(Account.kind.in_(("commission_pending", "commission_available", "commission_debt")))
        .group_by(Account.kind)
        .tuples()
    )
    return {
        "pending": int(sums.get("commission_pending") or 0),
        "available": int(sums.get("commission_available") or 0),
        "owed": -int(sums.get("commission_debt") or 0),
    }


def _distribution_page(form=None, error=None, status=200):
    overrides = (
        ProductRates.select(ProductRates, Product)
        .join(Product)
        .order_by(Product.sort_order, Product.id)
    )
    page = render_template(
        "admin/distribution.html",
        shop_rates=rates.shop_rates(),
        rates_setting=settings.get("commission.rates"),
        percent=rates.format_percent,
        overrides=list(overrides),
        products=list(Product.select(Product.id, Product.name).order_by(Product.id)),
        totals=_totals(),
        form=form or {},
        error=error,
    )
    return page, status


@bp.route("/distribution")
@staff_required
def distribution_page():
    return _distribution_page()


@bp.route("/distribution/product-rates", methods=["POST"])
@staff_required
def distribution_product_rates():
    form = {
        "product_id": request.form.get("product_id", ""),
        "rates": request.form.get("rates", ""),
    }
    product = Product.get_or_none(Product.id == request.form.get("product_id", type=int))
    if product is None:
        return _distribution_page(form, _("Choose a product."), 400)
    try:
        stored = rates.set_product_rates(product, form["rates"], actor=current_user)
    except Refusal as exc:
        return _distribution_page(form, exc.translated(), 400)
    if stored is None:
        flash(_("%(name)s earns the shop's rates again.", name=product.name), "success")
    else:
        flash(_("%(name)s now has its own rates.", name=product.name), "success")
    return redirect(url_for("admin.distribution_page"), 303)


def _user_page(user: User, error=None, status=200, role_error=None):
    history = (
        AuditLog.select()
        .where((AuditLog.action == "user.referrer") & (AuditLog.target == f"user:{user.id}"))
        .order_by(AuditLog.id.desc())
        .limit(20)
    )
    page = render_template(
        "admin/user.html",
        user=user,
        email=mask_email(user.email),
        phone=mask_phone(user.phone or ""),
        upline=referrals.upline(user, UPLINE_SHOWN),
        downline=referrals.downline(user, overview.levels_shown()),
        mask=mask_email,
        balances=overview.balances(user),
        records=list(overview.records(user, 1)),
        percent=rates.format_percent,
        history=list(history),
        error=error,
        role_error=role_error,
    )
    return page, status


def _user(user_id: int) -> User:
    return User.get_or_none(User.id == user_id) or abort(404)


@bp.route("/users/<int:user_id>")
@staff_required
def user_detail(user_id):
    return _user_page(_user(user_id))


@bp.route("/users/<int:user_id>/referrer", methods=["POST"])
@staff_required
def user_referrer(user_id):
    user = _user(user_id)
    try:
        referrals.change_referrer(
            user, request.form.get("code", ""), current_user, request.form.get("reason", "")
        )
    except Refusal as exc:
        return _user_page(user, exc.translated(), 400)
    flash(_("Referrer changed."), "success")
    return redirect(url_for("admin.user_detail", user_id=user.id), 303)


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@staff_required
def user_role(user_id):
    """Only the owner hands out (or takes back) staff rights."""
    if not current_user.is_owner:
        abort(403)
    user = _user(user_id)
    try:
        accounts.set_role(user, request.form.get("role", ""), current_user)
    except Refusal as exc:
        return _user_page(user, status=400, role_error=exc.translated())
    flash(_("User #%(id)d is now %(role)s.", id=user.id, role=_(user.role)), "success")
    return redirect(url_for("admin.user_detail", user_id=user.id), 303)
