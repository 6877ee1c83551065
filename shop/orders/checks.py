"""Audit rules for orders and their money (DESIGN.md invariants 2, 5 and 8), run by
`shop audit` on a live database. Set-based statements, as in `shop.inventory.checks`.
Commission's own rules are in `shop.distribution.checks`."""

from peewee import JOIN, Case, fn

from shop.ledger.models import Account, Entry, Journal
from shop.orders.models import Order

ESCROW = "shop:escrow"
# paid and neither settled nor refunded: their money is in escrow
IN_ESCROW = ("paid", "held", "delivered", "disputed")
COST_KINDS = ("cost_of_goods", "supplier_payable")
PENDING_COMMISSION = "commission_pending"


def escrow_matches_orders() -> list[str]:
    """The money paid for orders not yet settled or refunded is in escrow, except their
    pending commission, which left escrow at payment for the referrers' pending balances:
    escrow + all commission_pending = the amounts of those orders. One statement, so the sums
    come from the same snapshot. (The distribution audit ties each pending balance to its
    orders.)"""
    escrow = Account.select(Account.balance).where(Account.code == ESCROW)
    pending = Account.select(fn.COALESCE(fn.SUM(Account.balance), 0)).where(
        Account.kind == PENDING_COMMISSION
    )
    held, balance, commission = (
        Order.select(fn.COALESCE(fn.SUM(Order.amount), 0), escrow, pending)
        .where(Order.status.in_(IN_ESCROW))
        .tuples()
        .get()
    )
    balance, commission = int(balance or 0), int(commission or 0)
    if int(held) != balance + commission:
        return [
            f"escrow holds {balance} and pending commission {commission}, but paid, unsettled "
            f"orders add up to {held} ({'/'.join(IN_ESCROW)})"
        ]
    return []


def settlements(limit: int = 100) -> list[str]:
    """Each completed order's payment left escrow in full: all of its amount came in, and it
    went out as pending commission at payment and one `order.settle` journal at completion,
    which credits what it took: the cost to a cost account, then contributions and revenue in
    positive shares. With the commission audit (commission within margin, every commission
    row matched by the ledger) this is invariant 8: cost + commissions + contributions +
    revenue = amount paid. `amount` is the money paid, after any points: their value is a
    discount the shop funds, never in escrow (see `shop.points`; `order_points` checks them).
    Only completed orders, and refunded ones whose settlement was taken back
    (`order.unsettle`), have a settle journal."""
    is_escrow = Account.code == ESCROW
    is_settle = Journal.kind == "order.settle"
    escrow_in = fn.SUM(Case(None, [(is_escrow & (Entry.amount > 0), Entry.amount)], 0))
    escrow_net = fn.SUM(Case(None, [(is_escrow, Entry.amount)], 0))
    credited = fn.SUM(Case(None, [(is_settle & ~is_escrow, Entry.amount)], 0))
    settle_out = fn.SUM(Case(None, [(is_settle & is_escrow, Entry.amount)], 0))
    cost_paid = fn.SUM(Case(None, [(is_settle & Account.kind.in_(COST_KINDS), Entry.amount)], 0))
    debits = fn.SUM(Case(None, [(is_settle & ~is_escrow & (Entry.amount < 0), 1)], 0))
    journals = fn.COUNT(Case(None, [(is_settle, Journal.id)], None).distinct())
    cost_due = Case(None, [(Order.cost < Order.amount, Order.cost)], Order.amount)
    rows = (
        Order.select(
            Order.order_no, Order.amount, journals, escrow_in, escrow_net, settle_out, credited
        )
        .join(Journal, JOIN.LEFT_OUTER, on=(Journal.ref == Order.order_no))
        .join(Entry, JOIN.LEFT_OUTER, on=(Entry.journal == Journal.id))
        .join(Account, JOIN.LEFT_OUTER, on=(Account.id == Entry.account))
        .where((Order.status == "completed") & (Order.amount > 0))
        .group_by(Order.id, Order.order_no, Order.amount, Order.cost)
        .having(
            (journals > 1)
            | (escrow_in != Order.amount)
            | (escrow_net != 0)
            | (credited + settle_out != 0)
            | (fn.COALESCE(cost_paid, 0) != cost_due)
            | (debits > 0)
        )
        .order_by(Order.id)
        .limit(limit)
        .tuples()
    )
    problems = [
        f"completed order {order_no} of {amount}: {n} settle journals; {int(paid_in or 0)} came "
        f"into escrow and {int(left or 0)} is still there; the settlement took "
        f"{-int(out or 0)} from escrow and credited {int(paid or 0)}"
        for order_no, amount, n, paid_in, left, out, paid in rows
    ]
    unsettled = Journal.select(Journal.ref).where(Journal.kind == "order.unsettle")
    strays = (
        Journal.select(Journal.id, Journal.ref, Order.status)
        .join(Order, JOIN.LEFT_OUTER, on=(Order.order_no == Journal.ref))
        .where(Journal.kind == "order.settle")
        .where(
            Order.id.is_null()
            | (Order.status.not_in(("completed", "refunded")))
            | ((Order.status == "refunded") & Journal.ref.not_in(unsettled))
        )
        .order_by(Journal.id)
        .limit(limit)
        .tuples()
    )
    problems += [
        f"settle journal {jid} names order {ref}, which is {status or 'missing'}"
        + (" and its settlement was never taken back" if status == "refunded" else "")
        for jid, ref, status in strays
    ]
    return problems
