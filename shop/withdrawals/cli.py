"""`flask --app app shop withdrawals list|approve|reject|pay`: the withdrawal queue for
operators who script it. Payees are printed masked; the full account is only ever shown by
the admin's audited reveal. Steps run with no staff actor: the audit log names none."""

import click

from shop.cli.base import BadInput, command, shop_cli
from shop.withdrawals import service
from shop.withdrawals.models import STATUSES, Withdrawal


@shop_cli.group(name="withdrawals")
def withdrawals_group():
    """Review and pay out commission withdrawals."""


@command(group=withdrawals_group, name="list")
@click.option("--status", default="", help=f"Only this status: {', '.join(STATUSES)}.")
def withdrawals_list(status):
    """Withdrawals newest first, optionally of one status."""
    query = Withdrawal.select().order_by(Withdrawal.id.desc())
    if status:
        if status not in STATUSES:
            raise BadInput(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
        query = query.where(Withdrawal.status == status)
    return {"withdrawals": [service.as_json(w) for w in query]}


@command(group=withdrawals_group, name="approve")
@click.argument("withdrawal_id")
def withdrawals_approve(withdrawal_id):
    """Approve a requested withdrawal; no money moves yet.

    Send the payout, then record it with `withdrawals pay`.
    """
    return service.as_json(service.approve(_withdrawal(withdrawal_id), None))


@command(group=withdrawals_group, name="reject")
@click.argument("withdrawal_id")
@click.option("--reason", default="", help="Shown to the user; required.")
def withdrawals_reject(withdrawal_id, reason):
    """Reject a withdrawal; its amount returns to the user's commission.

    Only a requested or approved withdrawal can be rejected. The reason is shown to the user.
    """
    return service.as_json(service.reject(_withdrawal(withdrawal_id), None, reason))


@command(group=withdrawals_group, name="pay")
@click.argument("withdrawal_id")
@click.option("--reference", default="", help="The transfer's reference, for the record.")
def withdrawals_pay(withdrawal_id, reference):
    """Mark an approved withdrawal paid, once the payout has been sent."""
    return service.as_json(service.mark_paid(_withdrawal(withdrawal_id), None, reference))


def _withdrawal(withdrawal_id: str) -> Withdrawal:
    """By its id, typed as screens show it (W12) or bare (12)."""
    number = withdrawal_id.strip().upper().removeprefix("W")
    found = None
    if number.isdigit():
        found = Withdrawal.get_or_none(Withdrawal.id == int(number))
    if found is None:
        raise BadInput(f"no withdrawal {withdrawal_id}", "not_found")
    return found
