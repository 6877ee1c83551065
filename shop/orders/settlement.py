"""Splitting a completed order's escrow: cost, then contributors (commission), then revenue.

Contributors are functions registered by other areas (the distribution area adds commission)
that return ledger entries to credit out of what the order earned. The split guarantees
DESIGN.md invariant 8: cost + contributions + revenue = amount paid, and revenue is never
negative because contributors may only share the margin they are offered.
"""

from collections.abc import Callable

from shop import ledger
from shop.orders.models import Order

Contributor = Callable[[Order, int], list[tuple[object, int]]]
_CONTRIBUTORS: list[Contributor] = []


class SettlementError(RuntimeError):
    pass


def contributor(fn: Contributor) -> Contributor:
    """Register `fn(order, margin) -> [(account, amount), ...]`, amounts > 0, sum ≤ margin."""
    _CONTRIBUTORS.append(fn)
    return fn


def cost_account(order: Order):
    """Where the cost of the goods goes: the owner's own stock recovers into cost_of_goods."""
    return ledger.system_account("cost_of_goods")


def split(order: Order) -> list[tuple[object, int]]:
    """The credit side of the settlement journal (the debit is escrow −amount)."""
    cost = min(order.cost, order.amount)
    credits: list[tuple[object, int]] = []
    if cost > 0:
        credits.append((cost_account(order), cost))
    margin = order.amount - cost
    for fn in _CONTRIBUTORS:
        shares = fn(order, margin)
        paid = sum(amount for _, amount in shares)
        if any(type(a) is not int or a <= 0 for _, a in shares) or paid > margin:
            raise SettlementError(f"{fn.__name__} asked for {paid} out of a margin of {margin}")
        credits.extend(shares)
        margin -= paid
    if margin > 0:
        credits.append((ledger.system_account("revenue"), margin))
    return credits
