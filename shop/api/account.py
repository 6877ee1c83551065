"""The account page's API keys: list, create (the secret is shown this once), revoke.
A separate blueprint from the API itself, because these are browser forms under CSRF."""

from flask import Blueprint, flash, make_response, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, Optional

from shop import themes
from shop.api import keys

bp = Blueprint("api_keys", __name__)


class CreateKeyForm(FlaskForm):
    label = StringField(_l("Label (optional)"), validators=[Optional(), Length(max=keys.MAX_LABEL)])


def _page(form, secret=None, new_key=None, status=200):
    page = themes.render(
        "account/api_keys.html",
        form=form,
        api_keys=list(keys.keys_of(current_user)),
        secret=secret,
        new_key=new_key,
    )
    response = make_response(page, status)
    # the page may carry a secret: never keep it in a cache or the back-forward history
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/account/api-keys")
@login_required
def index():
    return _page(CreateKeyForm())


@bp.post("/account/api-keys")
@login_required
def create():
    form = CreateKeyForm()
    if not form.validate_on_submit():
        return _page(form, status=400)
    try:
        key, secret = keys.create(current_user.id, form.label.data, actor=current_user)
    except keys.ApiKeyError as exc:
        form.label.errors = [exc.translated()]
        return _page(form, status=400)
    return _page(CreateKeyForm(formdata=None), secret=secret, new_key=key)


@bp.post("/account/api-keys/<key_id>/revoke")
@login_required
def revoke(key_id):
    """One button per key; the app-wide CSRF protection checks the form's token."""
    try:
        keys.revoke(key_id, user=current_user, actor=current_user)
        flash(_("The API key was revoked."), "success")
    except keys.ApiKeyError as exc:
        flash(exc.translated(), "error")
    return redirect(url_for("api_keys.index"))
