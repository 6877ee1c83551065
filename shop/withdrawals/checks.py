"""Audit rules for withdrawals, run by `shop audit` on a live database. Set-based statements,
as in `shop.orders.checks`, so they stay quick as the tables grow."""

from peewee import JOIN, Case, Value, fn

from shop.ledger.models import Account, Entry, Journal
from shop.withdrawals.models import OPEN_STATUSES, Withdrawal

PENDING = "withdrawal_pending"
KINDS = ("withdrawal.request", "withdrawal.paid", "withdrawal.rejected")


def pending_matches_open(limit: int = 100) -> list[str]:
    """Each user's withdrawal_pending balance equals the amounts of their requested and
    approved withdrawals: money waiting for a payout is exactly what staff have to decide."""
    open_sums = (
        Withdrawal.select(Withdrawal.user.alias("user_id"), fn.SUM(Withdrawal.amount).alias("held"))
        .where(Withdrawal.status.in_(OPEN_STATUSES))
        .group_by(Withdrawal.user)
        .alias("open_sums")
    )
    held = fn.COALESCE(open_sums.c.held, 0)
    balances = (
        Account.select(Account.owner_id, Account.balance, held)
        .join(open_sums, JOIN.LEFT_OUTER, on=(Account.owner_id == open_sums.c.user_id))
        .where((Account.kind == PENDING) & (Account.balance != held))
        .order_by(Account.owner_id)
        .limit(limit)
        .tuples()
    )
    problems = [
        f"user {user_id}: withdrawal_pending holds {balance} but open withdrawals add up to {total}"
        for user_id, balance, total in balances
    ]
    accounts = Account.select(Account.owner_id).where(Account.kind == PENDING)
    orphans = (
        Withdrawal.select(Withdrawal.user, fn.SUM(Withdrawal.amount))
        .where(Withdrawal.status.in_(OPEN_STATUSES) & Withdrawal.user.not_in(accounts))
        .group_by(Withdrawal.user)
        .order_by(Withdrawal.user)
        .limit(limit)
        .tuples()
    )
    problems += [
        f"user {user_id}: open withdrawals add up to {total} but there is no withdrawal_pending"
        for user_id, total in orphans
    ]
    return problems


def journals_match(limit: int = 100) -> list[str]:
    """Each withdrawal has the journals of its steps and no others: one request journal that
    took its amount; when paid, one journal that took the amount out of withdrawal_pending
    and credited the payout to shop:payout and the fee to shop:revenue; when rejected, one
    journal that gave it back."""
    is_kind = {kind: Journal.kind == kind for kind in KINDS}

    def count(kind):
        return fn.COUNT(fn.DISTINCT(Case(None, [(is_kind[kind], Journal.id)], None)))

    def moved(kind, account):
        return fn.COALESCE(fn.SUM(Case(None, [(is_kind[kind] & account, Entry.amount)], 0)), 0)

    pending = (Account.kind == PENDING) & (Account.owner_id == Withdrawal.user)
    requests, paid, rejected = (count(kind) for kind in KINDS)
    requested_in = moved("withdrawal.request", pending)
    paid_out = moved("withdrawal.paid", pending)
    to_payout = moved("withdrawal.paid", Account.code == "shop:payout")
    to_revenue = moved("withdrawal.paid", Account.code == "shop:revenue")
    given_back = moved("withdrawal.rejected", pending)
    is_paid = Withdrawal.status == "paid"
    is_rejected = Withdrawal.status == "rejected"
    rows = (
        Withdrawal.select(
            Withdrawal.id,
            Withdrawal.status,
            Withdrawal.amount,
            requests,
            paid,
            rejected,
            requested_in,
            paid_out,
            to_payout,
            to_revenue,
            given_back,
        )
        .join(
            Journal,
            JOIN.LEFT_OUTER,
            on=(
                (Journal.ref == Value("W").concat(Withdrawal.id.cast("TEXT")))
                & Journal.kind.in_(KINDS)
            ),
        )
        .join(Entry, JOIN.LEFT_OUTER, on=(Entry.journal == Journal.id))
        .join(Account, JOIN.LEFT_OUTER, on=(Account.id == Entry.account))
        .group_by(Withdrawal.id)
        .having(
            (requests != 1)
            | (requested_in != Withdrawal.amount)
            | (paid != Case(None, [(is_paid, 1)], 0))
            | (paid_out != Case(None, [(is_paid, Withdrawal.amount * -1)], 0))
            | (to_payout != Case(None, [(is_paid, Withdrawal.payout)], 0))
            | (to_revenue != Case(None, [(is_paid, Withdrawal.fee)], 0))
            | (rejected != Case(None, [(is_rejected, 1)], 0))
            | (given_back != Case(None, [(is_rejected, Withdrawal.amount * -1)], 0))
        )
        .order_by(Withdrawal.id)
        .limit(limit)
        .tuples()
    )
    return [
        f"withdrawal {wid} ({status}) of {amount}: {n_req} request journals moved {req} in, "
        f"{n_paid} paid journals took {-out} out to payout {payout} and fee {fee}, "
        f"{n_rej} rejection journals gave {-back} back"
        for wid, status, amount, n_req, n_paid, n_rej, req, out, payout, fee, back in rows
    ]
