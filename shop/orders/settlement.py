"""Splitting a completed order's escrow: cost, then contributors, then revenue; and taking a
settlement back when a completed order is refunded.

Invariant 8 (DESIGN.md) for one order reads: cost + commissions + contributions + revenue =
amount paid. Commission is not a contributor here: it leaves escrow already at payment (it is
pending from then on, see `shop.distribution.commission`), so the area that holds it reports
the amount with `holder` and the settlement only splits what is still in escrow. The cap on
commission (≤ amount − cost) keeps that remainder at least the cost.

Contributors are functions registered by other areas that return ledger entries to credit
out of what the order earned. Revenue is never negative because contributors may only share
the margin they are offered.
"""

from collections.abc import Callable

from shop import ledger
from shop.ledger.models import Entry, Journal
from shop.orders.models import Order

Contributor = Callable[[Order, int], list[tuple[object, int]]]
Holder = Callable[[Order], int]
_CONTRIBUTORS: list[Contributor] = []
_HOLDERS: list[Holder] = []


class SettlementError(RuntimeError):
    pass


def contributor(fn: Contributor) -> Contributor:
    """Register `fn(order, margin) -> [(account, amount), ...]`, amounts > 0, sum ≤ margin."""
    _CONTRIBUTORS.append(fn)
    return fn


def holder(fn: Holder) -> Holder:
    """Register `fn(order) -> fen`: the part of the order's payment that its area took out of
    escrow before settlement and settles itself (pending commission). It comes off the margin
    the contributors share, so it is never paid twice."""
    _HOLDERS.append(fn)
    return fn


def cost_account(order: Order):
    """Where the cost of the goods goes: the owner's own stock recovers into cost_of_goods."""
    return ledger.system_account("cost_of_goods")


def split(order: Order) -> list[tuple[object, int]]:
    """The entries of the settlement journal: the escrow gives what it still holds of the order
    (the amount less what holders took out at payment), credited to cost, contributors and
    revenue. Empty when nothing of the order is left in escrow."""
    held = sum(fn(order) for fn in _HOLDERS)
    cost = min(order.cost, order.amount)
    margin = order.amount - cost - held
    if held < 0 or margin < 0:
        raise SettlementError(f"order {order.order_no}: {held} held outside escrow, cost {cost}")
    credits: list[tuple[object, int]] = []
    if cost > 0:
        credits.append((cost_account(order), cost))
    for fn in _CONTRIBUTORS:
        shares = fn(order, margin)
        paid = sum(amount for _, amount in shares)
        if any(type(a) is not int or a <= 0 for _, a in shares) or paid > margin:
            raise SettlementError(f"{fn.__name__} asked for {paid} out of a margin of {margin}")
        credits.extend(shares)
        margin -= paid
    if margin > 0:
        credits.append((ledger.system_account("revenue"), margin))
    if not credits:
        return []
    return [(ledger.system_account("escrow"), -(order.amount - held)), *credits]


def unsplit(order: Order) -> list[tuple[object, int]]:
    """The entries taking a completed order's settlement back into escrow, for a refund: the
    settlement journal reversed, entry by entry. Its credits went to shop accounts (cost,
    revenue), which may run negative; a contributor crediting an account a person owns would
    have to take that back itself. Empty when the order had nothing left to settle."""
    journal = Journal.get_or_none(
        (Journal.kind == "order.settle") & (Journal.ref == order.order_no)
    )
    if journal is None:
        return []
    entries = [(e.account, -e.amount) for e in journal.entries.order_by(Entry.id)]
    owned = [acct.code for acct, _ in entries if acct.owner_id is not None]
    if owned:
        raise SettlementError(f"order {order.order_no}: cannot take back {', '.join(owned)}")
    return entries
