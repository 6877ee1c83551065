"""Sign-up, sign-in, sign-out, the account page and password reset. Thin: parse, call the
service, render."""

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from shop import themes
from shop.accounts import service
from shop.accounts.forms import (
    ForgotForm,
    LoginForm,
    PasswordChangeForm,
    RegisterForm,
    ResetForm,
)
from shop.accounts.service import AccountError, TooManyAttempts
from shop.crypto import mask_email, mask_phone
from shop.distribution.referrals import REFERRAL_COOKIE
from shop.web import client_ip, safe_next_url

bp = Blueprint("accounts", __name__)


def _start_session(user) -> None:
    """Sign in with a fresh session, so an id planted before login is worthless."""
    from flask import session

    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    login_user(user, remember=False)


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if request.method == "GET":
        form.invite_code.data = request.cookies.get(REFERRAL_COOKIE, "")
    status = 200
    if form.validate_on_submit():
        try:
            user = service.register(
                form.email.data,
                form.password.data,
                phone=form.phone.data or None,
                # the form shows the invite cookie's code; emptied, the cookie still counts
                referrer_code=form.invite_code.data or request.cookies.get(REFERRAL_COOKIE),
            )
        except AccountError as exc:
            form.email.errors = [*form.email.errors, exc.translated()]
            status = 400
        else:
            _start_session(user)
            flash(_("Welcome! Your account is ready."), "success")
            return redirect(url_for("storefront.home"))
    elif request.method == "POST":
        status = 400
    return themes.render("account/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = service.authenticate(form.email.data, form.password.data, client_ip())
        except AccountError as exc:
            form.password.errors = [exc.translated()]
            status = 429 if isinstance(exc, TooManyAttempts) else 400
        else:
            _start_session(user)
            return redirect(safe_next_url(request.args.get("next")) or url_for("storefront.home"))
    elif request.method == "POST":
        status = 400
    return themes.render("account/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    from flask import session

    session.clear()
    return redirect(url_for("storefront.home"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    form = PasswordChangeForm()
    status = 200
    if form.validate_on_submit():
        try:
            service.change_password(current_user, form.current.data, form.password.data)
        except AccountError as exc:
            form.current.errors = [exc.translated()]
            status = 400
        else:
            _start_session(current_user._get_current_object())
            flash(_("Your password was changed. Other sessions were signed out."), "success")
            return redirect(url_for("accounts.account"))
    elif request.method == "POST":
        status = 400
    return themes.render(
        "account/account.html",
        form=form,
        masked_email=mask_email(current_user.email),
        masked_phone=mask_phone(current_user.phone or ""),
    ), status


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot():
    form = ForgotForm()
    if form.validate_on_submit():
        service.request_password_reset(
            form.email.data,
            current_app.secret_key,
            lambda token: url_for("accounts.reset", token=token, _external=True),
        )
        flash(_("If an account has this email, a reset link is on its way."), "info")
        return redirect(url_for("accounts.login"))
    return themes.render("account/forgot.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset(token):
    try:
        user = service.user_for_reset_token(token, current_app.secret_key)
    except AccountError as exc:
        flash(exc.translated(), "error")
        return redirect(url_for("accounts.forgot"))
    form = ResetForm()
    status = 200
    if form.validate_on_submit():
        try:
            service.set_password(user, form.password.data)
        except AccountError as exc:
            form.password.errors = [exc.translated()]
            status = 400
        else:
            flash(_("Your password was reset. Sign in with the new one."), "success")
            return redirect(url_for("accounts.login"))
    elif request.method == "POST":
        status = 400
    return themes.render("account/reset.html", form=form), status


@bp.route("/lang/<code>", methods=["POST"])
def set_language(code):
    from shop.i18n import LANGUAGES

    if code not in LANGUAGES:
        return redirect(url_for("storefront.home"))
    if current_user.is_authenticated:
        service.set_locale(current_user, code)
    response = redirect(safe_next_url(request.form.get("next")) or url_for("storefront.home"))
    response.set_cookie("lang", code, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response
