"""Admin pages for distributor levels: the list and add form, a level's rules and its fixed
prices per product, and a user's level (with their progress, points and violations).

Each POST calls one service function; a refused change shows the page again with the reason,
a 400 status and nothing written.
"""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from shop.accounts.models import User
from shop.admin.nav import nav_item
from shop.admin.views import PAGE_SIZE, bp, staff_required
from shop.catalog.models import Product
from shop.crypto import mask_email
from shop.levels import service as levels
from shop.levels.models import Level
from shop.levels.service import LevelError
from shop.money import format_amount
from shop.points import service as points
from shop.points.models import VIOLATION_KINDS, Violation

nav_item(_l("Levels"), "admin.levels_page", 82)

PRICE_PREFIX = "price-"


def _form_of(level: Level) -> dict:
    """The edit form's values for a saved level, in the formats staff type."""
    return {
        "name": level.name,
        "rank": level.rank,
        "discount_bps": level.discount_bps,
        "min_spend": "" if level.min_spend is None else format_amount(level.min_spend),
        "min_referrals": "" if level.min_referrals is None else level.min_referrals,
        "auto": "1" if level.auto else "",
        "commission_rates": level.commission_rates or "",
    }


@bp.route("/levels", methods=["GET", "POST"])
@staff_required
def levels_page():
    form, status = {"auto": "1", "discount_bps": "0"}, 200
    if request.method == "POST":
        try:
            level = levels.create_level(request.form, actor=current_user)
        except LevelError as exc:
            flash(exc.translated(), "error")
            form, status = request.form, 400
        else:
            flash(_("Level %(name)s added.", name=level.name), "success")
            return redirect(url_for("admin.level_edit", level_id=level.id), 303)
    page = render_template("admin/levels.html", rows=levels.all_levels(), form=form)
    return page, status


def _level_page(level: Level, form: dict, typed: dict | None = None, status: int = 200):
    page = max(request.args.get("page", 1, type=int), 1)
    products = list(
        Product.select().order_by(Product.sort_order, Product.id).paginate(page, PAGE_SIZE)
    )
    html = render_template(
        "admin/level_form.html",
        level=level,
        form=form,
        products=products,
        fixed=levels.fixed_prices(level),
        typed=typed or {},
        page=page,
        page_size=PAGE_SIZE,
    )
    return html, status


def _level(level_id: int) -> Level:
    return Level.get_or_none(Level.id == level_id) or abort(404)


@bp.route("/levels/<int:level_id>", methods=["GET", "POST"])
@staff_required
def level_edit(level_id):
    level = _level(level_id)
    if request.method == "GET":
        return _level_page(level, _form_of(level))
    try:
        levels.update_level(level, request.form, actor=current_user)
    except LevelError as exc:
        flash(exc.translated(), "error")
        return _level_page(level, request.form, status=400)
    flash(_("Level saved."), "success")
    return redirect(url_for("admin.level_edit", level_id=level.id), 303)


@bp.route("/levels/<int:level_id>/prices", methods=["POST"])
@staff_required
def level_prices(level_id):
    """Save the fixed prices typed on one page of products; a blank one is removed."""
    level = _level(level_id)
    typed = {
        int(key[len(PRICE_PREFIX) :]): value
        for key, value in request.form.items()
        if key.startswith(PRICE_PREFIX) and key[len(PRICE_PREFIX) :].isdigit()
    }
    try:
        below_cost = levels.set_fixed_prices(level, typed, actor=current_user)
    except LevelError as exc:
        flash(exc.translated(), "error")
        return _level_page(level, _form_of(level), typed, 400)
    flash(_("Fixed prices saved."), "success")
    for product in below_cost:
        flash(
            _(
                "The fixed price of %(product)s is below its cost %(cost)s: "
                "every sale to this level loses money.",
                product=product.name,
                cost=format_amount(product.cost),
            ),
            "warning",
        )
    page = request.args.get("page", 1, type=int)
    return redirect(url_for("admin.level_edit", level_id=level.id, page=page), 303)


# a user's level ------------------------------------------------------------------------------


def user_page(user: User, status: int = 200):
    spend, referrals = levels.progress(user.id)
    violations = Violation.select().where(Violation.user == user.id).order_by(Violation.id.desc())
    page = render_template(
        "admin/user_level.html",
        user=user,
        email=mask_email(user.email),
        levels=levels.all_levels(),
        spend=spend,
        referrals=referrals,
        points=points.balance(user.id),
        violations=list(violations),
        kinds=VIOLATION_KINDS,
    )
    return page, status


def _user(user_id: int) -> User:
    return User.get_or_none(User.id == user_id) or abort(404)


@bp.route("/users/<int:user_id>/level", methods=["GET", "POST"])
@staff_required
def user_level(user_id):
    user = _user(user_id)
    if request.method == "GET":
        return user_page(user)
    try:
        level = levels.find_level(request.form.get("level", ""))
        levels.set_user_level(user, level, actor=current_user)
    except LevelError as exc:
        flash(exc.translated(), "error")
        return user_page(user, 400)
    flash(_("Level saved."), "success")
    return redirect(url_for("admin.user_level", user_id=user.id), 303)
