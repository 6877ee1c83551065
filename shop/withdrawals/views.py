"""The referrer's withdrawal page: available commission, the request form, the history with
statuses and reasons, and moving commission to the wallet. Thin: parse, call the service,
render; a refusal re-renders the page with its message and a 4xx, nothing changed."""

from decimal import Decimal

from flask import Blueprint, flash, make_response, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from shop import settings, themes
from shop.money import AmountError, format_amount, parse_amount
from shop.withdrawals import service
from shop.withdrawals.forms import METHOD_LABELS, WithdrawForm
from shop.withdrawals.models import Withdrawal
from shop.withdrawals.service import WithdrawalError

bp = Blueprint("withdrawals", __name__)
HISTORY_PAGE = 20


def _page(form, error: str = "", status: int = 200):
    page = max(request.args.get("page", 1, type=int), 1)
    fee_bps = settings.get("withdrawal.fee_bps")
    rows = list(
        Withdrawal.select()
        .where(Withdrawal.user == current_user.id)
        .order_by(Withdrawal.id.desc())
        .limit(HISTORY_PAGE + 1)
        .offset((page - 1) * HISTORY_PAGE)
    )
    html = themes.render(
        "account/withdrawals.html",
        form=form,
        error=error,
        balances=service.balances(current_user),
        history=[(w, service.masked(w)) for w in rows[:HISTORY_PAGE]],
        methods=METHOD_LABELS,
        page=page,
        has_next=len(rows) > HISTORY_PAGE,
        minimum=settings.get("withdrawal.min_amount"),
        fee_bps=fee_bps,
        fee_percent=format(Decimal(fee_bps) / 100, "f"),  # 150 → "1.5", with no float
        fee_min=settings.get("withdrawal.fee_min"),
    )
    response = make_response(html, status)
    # the page shows the user's payout accounts, if masked: keep it out of shared caches
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/withdrawals")
@login_required
def index():
    return _page(WithdrawForm())


@bp.post("/withdrawals")
@login_required
def create():
    form = WithdrawForm()
    if not form.validate_on_submit():
        return _page(form, status=400)
    try:
        withdrawal = service.request(
            current_user.id,
            parse_amount(form.amount.data),
            form.method.data,
            form.payee_name.data,
            form.payee_account.data,
        )
    except AmountError as exc:
        form.amount.errors = [exc.translated()]
        return _page(form, status=400)
    except WithdrawalError as exc:
        return _page(form, error=exc.translated(), status=exc.status)
    flash(
        _(
            "Withdrawal of %(amount)s requested: staff will review it.",
            amount=format_amount(withdrawal.amount),
        ),
        "success",
    )
    return redirect(url_for("withdrawals.index"), 303)


@bp.post("/withdrawals/to-wallet")
@login_required
def to_wallet():
    """All available commission to the wallet, or the amount typed; the app-wide CSRF
    protection checks the form's token."""
    raw = request.form.get("amount", "").strip()
    try:
        moved = service.commission_to_wallet(current_user.id, parse_amount(raw) if raw else None)
    except AmountError as exc:
        return _page(WithdrawForm(formdata=None), error=exc.translated(), status=400)
    except WithdrawalError as exc:
        return _page(WithdrawForm(formdata=None), error=exc.translated(), status=exc.status)
    flash(_("%(amount)s moved to your wallet.", amount=format_amount(moved)), "success")
    return redirect(url_for("withdrawals.index"), 303)
