"""Audit rules for orders and their money (DESIGN.md invariants 2, 5 and 8), run by
`shop audit` on a live database. Set-based statements, as in `shop.inventory.checks`."""

from peewee import JOIN, Case, fn

from shop.ledger.models import Account, Entry, Journal
from shop.orders.models import Order

ESCROW = "shop:escrow"
# paid and neither settled nor refunded: their money is in escrow
IN_ESCROW = ("paid", "held", "delivered", "disputed")
COST_KINDS = ("cost_of_goods", "supplier_payable")


def escrow_matches_orders() -> list[str]:
    """The escrow account holds exactly the amounts of the orders paid but not yet settled
    or refunded. One statement, so the two sums come from the same snapshot."""
    escrow = Account.select(Account.balance).where(Account.code == ESCROW)
    held, balance = (
        Order.select(fn.COALESCE(fn.SUM(Order.amount), 0), escrow)
        .where(Order.status.in_(IN_ESCROW))
        .tuples()
        .get()
    )
    if int(held) != int(balance or 0):
        return [
            f"escrow holds {balance or 0} but paid, unsettled orders add up to {held} "
            f"({'/'.join(IN_ESCROW)})"
        ]
    return []


def settlements(limit: int = 100) -> list[str]:
    """Each completed order with an amount was settled by exactly one `order.settle` journal
    that takes the amount out of escrow and credits all of it out, the cost to a cost
    account and the rest (commission, revenue) in positive shares: cost + contributions +
    revenue = amount paid (invariant 8). No other order has a settle journal. `amount` is the
    money paid, after any points: their value is a discount the shop funds, never in escrow
    (see `shop.points`; `order_points` checks them)."""
    is_escrow = Account.code == ESCROW
    escrow_out = fn.SUM(Case(None, [(is_escrow, Entry.amount)], 0))
    credited = fn.SUM(Case(None, [(~is_escrow, Entry.amount)], 0))
    cost_paid = fn.SUM(Case(None, [(Account.kind.in_(COST_KINDS), Entry.amount)], 0))
    debits = fn.SUM(Case(None, [((~is_escrow) & (Entry.amount < 0), 1)], 0))
    journals = fn.COUNT(Journal.id.distinct())
    cost_due = Case(None, [(Order.cost < Order.amount, Order.cost)], Order.amount)
    rows = (
        Order.select(Order.order_no, Order.amount, journals, escrow_out, credited, cost_paid)
        .join(
            Journal,
            JOIN.LEFT_OUTER,
            on=((Journal.ref == Order.order_no) & (Journal.kind == "order.settle")),
        )
        .join(Entry, JOIN.LEFT_OUTER, on=(Entry.journal == Journal.id))
        .join(Account, JOIN.LEFT_OUTER, on=(Account.id == Entry.account))
        .where((Order.status == "completed") & (Order.amount > 0))
        .group_by(Order.id, Order.order_no, Order.amount, Order.cost)
        .having(
            (journals != 1)
            | (escrow_out + Order.amount != 0)
            | (credited != Order.amount)
            | (cost_paid != cost_due)
            | (debits > 0)
        )
        .order_by(Order.id)
        .limit(limit)
        .tuples()
    )
    problems = [
        f"completed order {order_no} of {amount}: {n} settle journals took {-int(out or 0)} "
        f"from escrow and credited {int(paid or 0)}, cost {int(cost or 0)}"
        for order_no, amount, n, out, paid, cost in rows
    ]
    strays = (
        Journal.select(Journal.id, Journal.ref, Order.status)
        .join(Order, JOIN.LEFT_OUTER, on=(Order.order_no == Journal.ref))
        .where(Journal.kind == "order.settle")
        .where(Order.id.is_null() | (Order.status != "completed"))
        .order_by(Journal.id)
        .limit(limit)
        .tuples()
    )
    problems += [
        f"settle journal {jid} names order {ref}, which is {status or 'missing'}"
        for jid, ref, status in strays
    ]
    return problems
