"""Every change to a withdrawal, one function per step, each its own transaction.

The money moves with the status, in the same transaction, so a withdrawal's status and its
ledger journals can never disagree. Staff steps are compare-and-set updates (`WHERE status =
...`): when two staff members press "paid" at once, one update matches the row and the other
matches nothing and is refused, so a withdrawal is paid once. A request cannot overdraw the
commission balance because the ledger's own conditional update refuses it (see
`shop.ledger.service`), however many requests race.
"""

import unicodedata

from shop import ledger, settings
from shop.audit import record
from shop.clock import now
from shop.crypto import mask, mask_email
from shop.db import db
from shop.messages import N_, Refusal
from shop.money import MAX_AMOUNT, format_amount
from shop.settings.registry import parse_int
from shop.withdrawals.models import METHODS, OPEN_STATUSES, Withdrawal

settings.register(
    "withdrawal.min_amount",
    1000,
    N_("Smallest commission withdrawal, in fen (1000 = 10.00)"),
    parse_int(1, MAX_AMOUNT, N_("fen")),
)
settings.register(
    "withdrawal.fee_bps",
    0,
    N_("Withdrawal fee in basis points of the amount: 100 is one percent"),
    parse_int(0, 10000, N_("basis points")),
)
settings.register(
    "withdrawal.fee_min",
    0,
    N_("Smallest withdrawal fee, in fen (100 = 1.00)"),
    parse_int(0, MAX_AMOUNT, N_("fen")),
)

MAX_NAME = 50
MAX_ACCOUNT = 100
MAX_REASON = 500
MAX_REFERENCE = 128


class WithdrawalError(Refusal):
    """A refused withdrawal step: bad input or not enough money. Nothing was written."""

    status = 400


class WithdrawalConflict(WithdrawalError):
    """The withdrawal is no longer in a status this step starts from: someone else moved it
    first, or it was never there. Nothing was written."""

    status = 409


# what the user sees before asking -------------------------------------------------------------


def fee_for(amount: int) -> int:
    """The fee on `amount`: `withdrawal.fee_bps` of it, rounded up to the fen so a rate never
    rounds down to nothing, and at least `withdrawal.fee_min`."""
    rate = -(-amount * settings.get("withdrawal.fee_bps") // 10000)
    return max(rate, settings.get("withdrawal.fee_min"))


def balances(user) -> dict[str, int]:
    """The user's commission available to withdraw and the amount waiting for payout."""
    user_id = getattr(user, "id", user)
    return {
        kind: ledger.balance(ledger.user_account(user_id, kind))
        for kind in ("commission_available", "withdrawal_pending")
    }


# the user's steps ---------------------------------------------------------------------------


def request(user, amount: int, method: str, payee_name: str, payee_account: str) -> Withdrawal:
    """Ask for `amount` fen of available commission to be paid to the payee by `method`.

    Everything is checked before anything is written; the ledger then moves the amount from
    commission_available to withdrawal_pending in the transaction that creates the record,
    and refuses (rolling both back) if the balance does not cover it.
    """
    if type(amount) is not int or amount <= 0:
        raise WithdrawalError(N_("The amount must be more than zero."))
    if method not in METHODS:
        raise WithdrawalError(N_("Choose how you want to be paid."))
    payee_name = _clean(
        payee_name,
        MAX_NAME,
        N_("Enter the payee's name."),
        N_("The payee's name may have at most %(count)d characters."),
    )
    payee_account = _clean(
        payee_account,
        MAX_ACCOUNT,
        N_("Enter the account to pay into."),
        N_("The account may have at most %(count)d characters."),
    )
    minimum = settings.get("withdrawal.min_amount")
    if amount < minimum:
        raise WithdrawalError(
            N_("The smallest withdrawal is %(minimum)s."), minimum=format_amount(minimum)
        )
    fee = fee_for(amount)
    if fee >= amount:
        raise WithdrawalError(
            N_("The fee of %(fee)s would take the whole amount: withdraw more."),
            fee=format_amount(fee),
        )
    user_id = getattr(user, "id", user)
    try:
        with db.atomic():
            withdrawal = Withdrawal.create(
                user=user_id,
                amount=amount,
                fee=fee,
                payout=amount - fee,
                method=method,
                payee_name=payee_name,
                payee_account=payee_account,
            )
            ledger.transfer(
                ledger.user_account(user_id, "commission_available"),
                ledger.user_account(user_id, "withdrawal_pending"),
                amount,
                "withdrawal.request",
                ref=withdrawal.ref,
                idem_key=f"withdrawal:{withdrawal.id}:request",
                actor=user_id,
            )
    except ledger.InsufficientFunds as exc:
        raise WithdrawalError(
            N_("You have %(available)s of commission available: withdraw at most that."),
            available=format_amount(exc.balance or 0),
        ) from None
    return withdrawal


def commission_to_wallet(user, amount: int | None = None) -> int:
    """Move `amount` fen (by default all) of available commission to the wallet, to spend in
    the shop; returns the amount moved. Refused, moving nothing, when the balance is short."""
    user_id = getattr(user, "id", user)
    available = ledger.user_account(user_id, "commission_available")
    if amount is None:
        amount = ledger.balance(available)
        if amount <= 0:
            raise WithdrawalError(N_("You have no commission available to move."))
    elif type(amount) is not int or amount <= 0:
        raise WithdrawalError(N_("The amount must be more than zero."))
    try:
        ledger.transfer(
            available,
            ledger.user_account(user_id, "wallet"),
            amount,
            "commission.to_wallet",
            actor=user_id,
        )
    except ledger.InsufficientFunds as exc:
        raise WithdrawalError(
            N_("You have %(available)s of commission available: move at most that."),
            available=format_amount(exc.balance or 0),
        ) from None
    return amount


# staff steps --------------------------------------------------------------------------------


def approve(withdrawal: Withdrawal, actor) -> Withdrawal:
    """Staff accept a request; no money moves until they mark it paid."""
    with db.atomic():
        _move(
            withdrawal,
            ("requested",),
            "approved",
            N_("Only a requested withdrawal can be approved; withdrawal %(id)d is %(status)s."),
            decided_at=now(),
            decided_by=_actor_id(actor),
        )
        record(
            "withdrawal.approve", target=_target(withdrawal), actor=actor, amount=withdrawal.amount
        )
    return withdrawal


def mark_paid(withdrawal: Withdrawal, actor, reference: str = "") -> Withdrawal:
    """Staff have sent the payout: the pending amount leaves the shop's books, the payout to
    shop:payout and the fee to shop:revenue, in one balanced journal."""
    reference = (reference or "").strip()
    if len(reference) > MAX_REFERENCE:
        raise WithdrawalError(
            N_("The payment reference may have at most %(count)d characters."),
            count=MAX_REFERENCE,
        )
    with db.atomic():
        _move(
            withdrawal,
            ("approved",),
            "paid",
            N_("Only an approved withdrawal can be marked paid; withdrawal %(id)d is %(status)s."),
            reference=reference,
            paid_at=now(),
            paid_by=_actor_id(actor),
        )
        entries = [
            (ledger.user_account(withdrawal.user_id, "withdrawal_pending"), -withdrawal.amount),
            (ledger.system_account("payout"), withdrawal.payout),
        ]
        if withdrawal.fee:
            entries.append((ledger.system_account("revenue"), withdrawal.fee))
        ledger.post(
            entries,
            "withdrawal.paid",
            memo=f"paid by {withdrawal.method}",
            ref=withdrawal.ref,
            idem_key=f"withdrawal:{withdrawal.id}:paid",
            actor=actor,
        )
        record(
            "withdrawal.paid",
            target=_target(withdrawal),
            actor=actor,
            payout=withdrawal.payout,
            fee=withdrawal.fee,
            reference=reference,
        )
    return withdrawal


def reject(withdrawal: Withdrawal, actor, reason: str) -> Withdrawal:
    """Staff refuse a request or an approved withdrawal not yet paid; the amount goes back
    to the user's available commission and the reason is shown to them."""
    reason = (reason or "").strip()
    if not reason:
        raise WithdrawalError(N_("Give the reason for the rejection: the user sees it."))
    if len(reason) > MAX_REASON:
        raise WithdrawalError(
            N_("The reason may have at most %(count)d characters."), count=MAX_REASON
        )
    with db.atomic():
        _move(
            withdrawal,
            OPEN_STATUSES,
            "rejected",
            N_(
                "Only a requested or approved withdrawal can be rejected; "
                "withdrawal %(id)d is %(status)s."
            ),
            reason=reason,
            decided_at=now(),
            decided_by=_actor_id(actor),
        )
        ledger.transfer(
            ledger.user_account(withdrawal.user_id, "withdrawal_pending"),
            ledger.user_account(withdrawal.user_id, "commission_available"),
            withdrawal.amount,
            "withdrawal.rejected",
            ref=withdrawal.ref,
            idem_key=f"withdrawal:{withdrawal.id}:rejected",
            actor=actor,
        )
        record(
            "withdrawal.reject",
            target=_target(withdrawal),
            actor=actor,
            amount=withdrawal.amount,
            reason=reason,
        )
    return withdrawal


def reveal(withdrawal: Withdrawal, actor) -> dict[str, str]:
    """The payee's name and account in full, for staff about to send the money. The audit
    record naming who looked is written before anything is returned."""
    record("withdrawal.reveal", target=_target(withdrawal), actor=actor)
    return {"payee_name": withdrawal.payee_name, "payee_account": withdrawal.payee_account}


# showing ------------------------------------------------------------------------------------


def masked(withdrawal: Withdrawal) -> dict[str, str]:
    """The payee as screens and the CLI show it: recognisable, not usable."""
    account = withdrawal.payee_account
    return {
        "payee_name": mask(withdrawal.payee_name),
        "payee_account": mask_email(account) if "@" in account else mask(account),
    }


def as_json(withdrawal: Withdrawal) -> dict:
    """The withdrawal for the CLI: amounts in fen, the payee masked."""
    return {
        "id": withdrawal.id,
        "user_id": withdrawal.user_id,
        "amount": withdrawal.amount,
        "fee": withdrawal.fee,
        "payout": withdrawal.payout,
        "method": withdrawal.method,
        **masked(withdrawal),
        "status": withdrawal.status,
        "reason": withdrawal.reason,
        "reference": withdrawal.reference,
        "created_at": withdrawal.created_at,
        "decided_at": withdrawal.decided_at,
        "decided_by": withdrawal.decided_by,
        "paid_at": withdrawal.paid_at,
        "paid_by": withdrawal.paid_by,
    }


# helpers ------------------------------------------------------------------------------------


def _clean(value, limit: int, missing: str, too_long: str) -> str:
    """A name or account as typed, trimmed; control characters are refused rather than
    stored, since staff copy these values into a bank's or wallet's form."""
    value = (value or "").strip()
    if not value:
        raise WithdrawalError(missing)
    if len(value) > limit:
        raise WithdrawalError(too_long, count=limit)
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise WithdrawalError(N_("Remove the line breaks and control characters."))
    return value


def _move(withdrawal: Withdrawal, sources: tuple, to: str, refused: str, **changes) -> None:
    """Compare-and-set `withdrawal` from one of `sources` to `to`, updating it in place."""
    updated = (
        Withdrawal.update(status=to, **changes)
        .where((Withdrawal.id == withdrawal.id) & Withdrawal.status.in_(sources))
        .execute()
    )
    if updated != 1:
        current = Withdrawal.select(Withdrawal.status).where(Withdrawal.id == withdrawal.id)
        raise WithdrawalConflict(refused, id=withdrawal.id, status=current.scalar() or "missing")
    withdrawal.status = to
    for name, value in changes.items():
        setattr(withdrawal, name, value)


def _actor_id(actor) -> int | None:
    return getattr(actor, "id", actor)


def _target(withdrawal: Withdrawal) -> str:
    return f"withdrawal:{withdrawal.id}"
