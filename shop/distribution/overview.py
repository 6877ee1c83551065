"""What a distributor's page shows: balances, earnings per day, the commission record.

Balances come from the ledger, never from the commission rows: what the page shows is what
the user can withdraw. Reads only; nothing here changes anything.
"""

from datetime import timedelta

from peewee import fn

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
    reversed. The rows are summed into days here rather than by SQL's DATE(), which cuts days
    at UTC midnight and cannot follow a zone's clock changes the same way on SQLite and
    PostgreSQL."""
    first = localtime.today() - timedelta(days=days - 1)
    rows = (
        Commission.select(Commission.created_at, Commission.amount)
        .where(
            (Commission.user == user.id)
            & Commission.status.in_(EARNING)
            & (Commission.created_at >= localtime.day_start(first))
        )
        .tuples()
    )
    found: dict[str, int] = {}
    for created_at, amount in rows:
        day = localtime.local_date(created_at).isoformat()
        found[day] = found.get(day, 0) + amount
    dates = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    return [(d, found.get(d, 0)) for d in dates]


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
