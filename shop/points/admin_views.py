"""Admin: recording a violation against a user, from the user's level page."""

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from shop.accounts.models import User
from shop.admin.views import bp, staff_required
from shop.levels.admin_views import user_page
from shop.points import maturation


@bp.route("/users/<int:user_id>/violations", methods=["POST"])
@staff_required
def user_violation(user_id):
    user = User.get_or_none(User.id == user_id) or abort(404)
    try:
        maturation.record_violation(
            user,
            request.form.get("kind", ""),
            request.form.get("note", ""),
            request.form.get("order_no", ""),
            actor=current_user,
        )
    except maturation.ViolationError as exc:
        flash(exc.translated(), "error")
        return user_page(user, 400)
    flash(_("Violation recorded: no referral points for this user."), "success")
    return redirect(url_for("admin.user_level", user_id=user.id), 303)
