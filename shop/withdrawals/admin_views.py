"""Admin pages for withdrawals: the queue with its status filter, one withdrawal's page with
the payee masked, the audited reveal, and the staff steps (approve, mark paid, reject).

Each step is a POST calling one service function. A refused step shows the withdrawal page
again with the reason and a 4xx status; the withdrawal and the ledger are unchanged.
"""

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from peewee import fn

from shop.accounts.models import User
from shop.admin.dashboard import card_provider
from shop.admin.nav import nav_item
from shop.admin.views import PAGE_SIZE, bp, staff_required
from shop.crypto import mask_email
from shop.withdrawals import service
from shop.withdrawals.forms import METHOD_LABELS
from shop.withdrawals.models import OPEN_STATUSES, STATUSES, Withdrawal
from shop.withdrawals.service import WithdrawalError

nav_item(_l("Withdrawals"), "admin.withdrawals_page", 40)


@card_provider
def _withdrawal_queues():
    waiting = dict(
        Withdrawal.select(Withdrawal.status, fn.COUNT(Withdrawal.id))
        .where(Withdrawal.status.in_(OPEN_STATUSES))
        .group_by(Withdrawal.status)
        .tuples()
    )
    listed = "admin.withdrawals_page"
    return [
        (
            str(_l("Withdrawals to review")),
            waiting.get("requested", 0),
            url_for(listed, status="requested"),
        ),
        (
            str(_l("Withdrawals to pay")),
            waiting.get("approved", 0),
            url_for(listed, status="approved"),
        ),
    ]


@bp.route("/withdrawals")
@staff_required
def withdrawals_page():
    page = max(request.args.get("page", 1, type=int), 1)
    status = request.args.get("status", "")
    query = Withdrawal.select().order_by(Withdrawal.id.desc())
    if status in STATUSES:
        query = query.where(Withdrawal.status == status)
    rows = [(w, service.masked(w)) for w in query.paginate(page, PAGE_SIZE)]
    return render_template(
        "admin/withdrawals.html",
        rows=rows,
        statuses=STATUSES,
        status=status,
        methods=METHOD_LABELS,
        page=page,
        page_size=PAGE_SIZE,
    )


def _withdrawal(withdrawal_id: int) -> Withdrawal:
    return Withdrawal.get_or_none(Withdrawal.id == withdrawal_id) or abort(404)


def _detail(withdrawal: Withdrawal, revealed: dict | None = None, status: int = 200):
    user = User.get_or_none(User.id == withdrawal.user_id)
    html = render_template(
        "admin/withdrawal.html",
        w=withdrawal,
        user_email=mask_email(user.email) if user else "",
        balances=service.balances(withdrawal.user_id),
        shown=revealed if revealed is not None else service.masked(withdrawal),
        revealed=revealed is not None,
        methods=METHOD_LABELS,
    )
    response = make_response(html, status)
    if revealed is not None:
        response.headers["Cache-Control"] = "no-store"  # a full account number is on it
    return response


@bp.route("/withdrawals/<int:withdrawal_id>")
@staff_required
def withdrawal_detail(withdrawal_id):
    return _detail(_withdrawal(withdrawal_id))


@bp.route("/withdrawals/<int:withdrawal_id>/reveal", methods=["POST"])
@staff_required
def withdrawal_reveal(withdrawal_id):
    """A POST, not a link: showing the payee in full is audited, and a link could be
    prefetched or followed without staff meaning to look."""
    withdrawal = _withdrawal(withdrawal_id)
    return _detail(withdrawal, revealed=service.reveal(withdrawal, current_user))


def _act(withdrawal_id: int, step, done: str):
    """Run one staff step; on refusal show the page again with why, with its status."""
    withdrawal = _withdrawal(withdrawal_id)
    try:
        step(withdrawal)
    except WithdrawalError as exc:
        flash(exc.translated(), "error")
        return _detail(Withdrawal.get_by_id(withdrawal.id), status=exc.status)
    flash(done, "success")
    return redirect(url_for("admin.withdrawal_detail", withdrawal_id=withdrawal.id), 303)


@bp.route("/withdrawals/<int:withdrawal_id>/approve", methods=["POST"])
@staff_required
def withdrawal_approve(withdrawal_id):
    return _act(
        withdrawal_id,
        lambda w: service.approve(w, current_user),
        _("Withdrawal approved: send the payout, then mark it paid."),
    )


@bp.route("/withdrawals/<int:withdrawal_id>/pay", methods=["POST"])
@staff_required
def withdrawal_pay(withdrawal_id):
    reference = request.form.get("reference", "")
    return _act(
        withdrawal_id,
        lambda w: service.mark_paid(w, current_user, reference),
        _("Withdrawal marked paid."),
    )


@bp.route("/withdrawals/<int:withdrawal_id>/reject", methods=["POST"])
@staff_required
def withdrawal_reject(withdrawal_id):
    reason = request.form.get("reason", "")
    return _act(
        withdrawal_id,
        lambda w: service.reject(w, current_user, reason),
        _("Withdrawal rejected; the amount is back in the user's commission."),
    )
