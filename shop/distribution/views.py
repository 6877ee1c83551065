"""The referrer's side: invite links (`/r/<code>`), their QR code, and the distributor page.

Thin: the cookie rule lives in `referrals`, the numbers in `overview`.
"""

import io

import segno
from flask import Blueprint, abort, make_response, redirect, request, url_for
from flask_login import current_user, login_required

from shop import themes
from shop.accounts.service import find_by_invite_code
from shop.crypto import mask_email
from shop.distribution import chart, overview, rates, referrals

bp = Blueprint("distribution", __name__)


@bp.route("/r/<code>")
def invite(code):
    """Remember whose invite brought the visitor (first touch wins) and show the shop."""
    response = redirect(url_for("storefront.home"))
    referrer = referrals.to_remember(code, request.cookies)
    if referrer is not None:
        response.set_cookie(
            referrals.REFERRAL_COOKIE,
            referrer.invite_code,
            max_age=referrals.COOKIE_DAYS * 86400,
            samesite="Lax",
            httponly=True,
        )
    return response


@bp.route("/r/<code>/qr.svg")
def invite_qr(code):
    """The invite link as a QR code, drawn here (no outside service sees who invites whom)."""
    referrer = find_by_invite_code(code) or abort(404)
    link = url_for("distribution.invite", code=referrer.invite_code, _external=True)
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False)
    response = make_response(out.getvalue())
    response.headers["Content-Type"] = "image/svg+xml"
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.route("/distribution")
@login_required
def dashboard():
    user = current_user._get_current_object()
    page = min(max(request.args.get("page", 1, type=int), 1), 10_000)
    downline = referrals.downline(user, overview.levels_shown())
    return themes.render(
        "distribution.html",
        link=url_for("distribution.invite", code=user.invite_code, _external=True),
        balances=overview.balances(user),
        downline=downline,
        mask=mask_email,
        chart=chart.bars(overview.earnings_by_day(user)),
        records=list(overview.records(user, page)),
        page=page,
        page_size=overview.RECORD_PAGE,
        percent=rates.format_percent,
    )
