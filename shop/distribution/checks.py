"""Audit rules for commission (DESIGN.md invariants 2 and 8), run by `shop audit` on a live
database: set-based statements, as in `shop.orders.checks`, each reporting at most `limit`
problems.

Together with the orders' escrow and settlement rules they prove that every fen of an order
is accounted for once: escrow + pending commission = unsettled orders, and cost + commission
+ revenue = amount paid, with commission never above the margin.
"""

from peewee import JOIN, Case, fn

from shop.distribution.models import Commission
from shop.ledger.models import Account, Entry, Journal
from shop.orders.checks import ESCROW, IN_ESCROW
from shop.orders.models import Order

# the order statuses each commission status belongs to
ORDER_STATUS = {
    "pending": IN_ESCROW,
    "available": ("completed",),
    "reversed": ("refunded",),
    "clawed_back": ("refunded",),
}


def within_margin(limit: int = 100) -> list[str]:
    """No order pays more commission than its margin (amount − cost), so the shop's revenue
    on it is never negative (invariant 8)."""
    total = fn.SUM(Commission.amount)
    margin = Order.amount - Case(None, [(Order.cost < Order.amount, Order.cost)], Order.amount)
    rows = (
        Order.select(Order.order_no, Order.amount, Order.cost, total)
        .join(Commission, on=(Commission.order == Order.id))
        .group_by(Order.id, Order.order_no, Order.amount, Order.cost)
        .having(total > margin)
        .order_by(Order.id)
        .limit(limit)
        .tuples()
    )
    return [
        f"order {no}: commission {int(paid)} exceeds its margin {amount - min(cost, amount)}"
        for no, amount, cost, paid in rows
    ]


def matches_ledger(limit: int = 100) -> list[str]:
    """Each order's commission rows add up to what its `commission.pending` journal took out
    of escrow, and each user's pending commission balance equals their pending rows."""
    taken = (
        Entry.select(Journal.ref.alias("ref"), fn.SUM(Entry.amount).alias("moved"))
        .join(Journal)
        .switch(Entry)
        .join(Account)
        .where((Journal.kind == "commission.pending") & (Account.code == ESCROW))
        .group_by(Journal.ref)
        .alias("taken")
    )
    rows = fn.SUM(Commission.amount)
    by_order = (
        Order.select(Order.order_no, rows, taken.c.moved)
        .join(Commission, on=(Commission.order == Order.id))
        .join(taken, JOIN.LEFT_OUTER, on=(taken.c.ref == Order.order_no))
        .group_by(Order.id, Order.order_no, taken.c.moved)
        .having(rows + fn.COALESCE(taken.c.moved, 0) != 0)
        .order_by(Order.id)
        .limit(limit)
        .tuples()
    )
    problems = [
        f"order {no}: commission rows add up to {int(total)} but {-int(moved or 0)} left escrow"
        for no, total, moved in by_order
    ]
    pending = (
        Commission.select(Commission.user.alias("user_id"), fn.SUM(Commission.amount).alias("sum"))
        .where(Commission.status == "pending")
        .group_by(Commission.user)
        .alias("pending")
    )
    owed = fn.COALESCE(pending.c.sum, 0)
    accounts = (
        Account.select(Account.code, Account.balance, owed)
        .join(pending, JOIN.LEFT_OUTER, on=(pending.c.user_id == Account.owner_id))
        .where((Account.kind == "commission_pending") & (Account.balance != owed))
        .order_by(Account.id)
        .limit(limit)
        .tuples()
    )
    problems += [
        f"account {code} holds {balance} but its pending commission rows add up to {int(rows)}"
        for code, balance, rows in accounts
    ]
    unbooked = (
        Commission.select(Commission.user, fn.SUM(Commission.amount))
        .join(
            Account,
            JOIN.LEFT_OUTER,
            on=((Account.owner_id == Commission.user) & (Account.kind == "commission_pending")),
        )
        .where((Commission.status == "pending") & Account.id.is_null())
        .group_by(Commission.user)
        .limit(limit)
        .tuples()
    )
    problems += [
        f"user {user_id} has {int(total)} of pending commission rows and no pending balance"
        for user_id, total in unbooked
    ]
    return problems


def follows_orders(limit: int = 100) -> list[str]:
    """A commission's status follows its order: pending while the order's money is in escrow,
    available once it completed, reversed or clawed back once it was refunded."""
    wrong = None
    for status, order_statuses in ORDER_STATUS.items():
        case = (Commission.status == status) & Order.status.not_in(order_statuses)
        wrong = case if wrong is None else wrong | case
    known = Commission.status.in_(tuple(ORDER_STATUS))
    rows = (
        Commission.select(Commission.id, Commission.status, Order.order_no, Order.status)
        .join(Order)
        .where(wrong | ~known)
        .order_by(Commission.id)
        .limit(limit)
        .tuples()
    )
    return [
        f"commission {cid} is {status} but its order {no} is {order_status}"
        for cid, status, no, order_status in rows
    ]


def debts(limit: int = 100) -> list[str]:
    """A commission debt account only ever records what a user owes (≤ 0): repaying more than
    the debt would be the shop owing money through the wrong account."""
    rows = (
        Account.select(Account.code, Account.balance)
        .where((Account.kind == "commission_debt") & (Account.balance > 0))
        .order_by(Account.id)
        .limit(limit)
        .tuples()
    )
    return [f"account {code} is {balance} above zero" for code, balance in rows]
