"""What a distributor's page shows: balances, earnings per day, the commission record.

Balances come from the ledger, never from the commission rows: what the page shows is what
the user can withdraw. Reads only; nothing here changes anything.
"""

import itertools
from datetime import timedelta

from peewee import Case, fn

from shop import ledger, localtime
from shop.distribution import commission, rates
from shop.distribution.models import Commission, ProductRates
from shop.ledger.models import Account, Entry
from shop.orders.models import Order

EARNING = ("pending", "available")  # reversed and clawed-back commission was never earned
RECORD_PAGE = 20


def balances(user) -> dict[str, int]:
    """Pending and available commission, a withdrawal waiting for payout, what was paid out,
    points, and any debt from claw-backs."""

    def held(kind):
        return ledger.balance(ledger.user_account(user.id, kind))

    return {
        "pending": held("commission_pending"),
        "available": held("commission_available"),
        "withdrawing": held("withdrawal_pending"),
        "withdrawn": paid_out(user.id),
        "points": held("points"),
        "owed": commission.owed(user.id),
    }


def paid_out(user_id: int) -> int:
    """What staff paid out of the user's withdrawals: the user's withdrawal_pending entries in
    journals that credited the shop's payout account."""
    payout = Account.select(Account.id).where(Account.code == "shop:payout")
    paid = Entry.select(Entry.journal).where(Entry.account.in_(payout))
    waiting = Account.select(Account.id).where(Account.code == f"user:{user_id}:withdrawal_pending")
    total = (
        Entry.select(fn.COALESCE(fn.SUM(Entry.amount), 0))
        .where(Entry.account.in_(waiting) & (Entry.amount < 0) & Entry.journal.in_(paid))
        .scalar()
    )
    return -int(total)


def earnings_by_day(user, days: int = 30) -> list[tuple[str, int]]:
    """(YYYY-MM-DD, fen) for each of the last `days` days in the shop's time zone up to
    today, oldest first, counting commission the day its order was paid, unless it was since
    reversed. One row comes back whatever the user earned: a sum per day, each over its own
    [shop's midnight, next midnight) in UTC. SQL's DATE() would cut the days at UTC midnight,
    and summing the rows here would read every commission of a busy distributor."""
    first = localtime.today() - timedelta(days=days - 1)
    dates = [first + timedelta(days=i) for i in range(days)]
    bounds = [localtime.day_start(d) for d in [*dates, dates[-1] + timedelta(days=1)]]
    at = Commission.created_at
    sums = [
        fn.SUM(Case(None, [((at >= start) & (at < end), Commission.amount)], 0))
        for start, end in itertools.pairwise(bounds)
    ]
    totals = (
        Commission.select(*sums)
        .where(
            (Commission.user == user.id)
            & Commission.status.in_(EARNING)
            & (at >= bounds[0])
            & (at < bounds[-1])
        )
        .tuples()
        .first()
    )
    return [(d.isoformat(), int(t or 0)) for d, t in zip(dates, totals, strict=True)]


def records(user, page: int):
    """The user's commission, newest first, with the order it came from (one page)."""
    return (
        Commission.select(Commission, Order.order_no, Order.product_name, Order.amount)
        .join(Order)
        .where(Commission.user == user.id)
        .order_by(Commission.id.desc())
        .paginate(page, RECORD_PAGE)
    )


def levels_shown() -> int:
    """How many levels of downline earn anything: the most rates the shop or a product has."""
    overrides = [r.rates.count(",") + 1 for r in ProductRates.select(ProductRates.rates)]
    return max([len(rates.shop_rates()), *overrides])
