"""Points at checkout: how many an order may use, taking them with the order and giving them
back when the order does not go through. See the package docstring for how their value is
accounted.

Every function here runs inside the order service's transaction, next to the order's status
change, so points move exactly when the order does. How many points the pool holds for an
order is read from the ledger (redeemed minus given back) rather than kept in a flag, so an
order that expired, was paid late and then refunded still gives back exactly what it took.
"""

import re

from peewee import fn

from shop import ledger, settings
from shop.ledger.models import Account, Entry, Journal
from shop.messages import N_, Refusal
from shop.settings.registry import parse_int

settings.register(
    "points.referral_days",
    90,
    N_("Days an invited user must stay, without a violation, before the referral points"),
    parse_int(0, 3650, N_("days")),
)
settings.register(
    "points.referral_award",
    100,
    N_("Points the referrer and the invited user each get when the invited user matures"),
    parse_int(0, 1_000_000, N_("points")),
)
settings.register(
    "points.value",
    1,
    N_("What one point pays at checkout, in fen"),
    parse_int(1, 10_000, N_("fen")),
)
settings.register(
    "points.max_ratio",
    10,
    N_("Percent of an order's price that points may pay (0 to 99)"),
    parse_int(0, 99, N_("percent")),
)

REDEEM = "points.redeem"
RETURN = "points.return"
ORDER_KINDS = (REDEEM, RETURN)
POINTS_RE = re.compile(r"[0-9]{1,12}")  # ASCII digits: str.isdigit() also takes "²"


class PointsError(Refusal):
    """Points an order cannot use; nothing was written."""

    code = "bad_points"
    status = 400


def balance(user_id: int) -> int:
    """The user's points in one read (the product page's query budget is tight); an account
    never used reads as 0 without being opened."""
    code = f"user:{user_id}:points"  # the code `ledger.user_account` gives it
    return int(Account.select(Account.balance).where(Account.code == code).scalar() or 0)


def offer(user) -> dict | None:
    """What the checkout form tells a signed-in buyer: their points and the rules."""
    if user is None:
        return None
    return {
        "balance": balance(user.id),
        "value": settings.get("points.value"),
        "max_ratio": settings.get("points.max_ratio"),
    }


def max_points(list_amount: int, cost: int) -> int:
    """The most points an order of this list price and cost may use: their value within
    `points.max_ratio` percent of the price, and never so much that the money paid falls
    below the cost (the supplier's share is paid in money; revenue stays ≥ 0)."""
    worth = min(list_amount * settings.get("points.max_ratio") // 100, list_amount - cost)
    return max(worth, 0) // settings.get("points.value")


def parse_points(raw) -> int:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return 0
    text = str(raw).strip()
    if isinstance(raw, bool | float) or not POINTS_RE.fullmatch(text):
        raise PointsError(N_("The points to use must be a whole number, like 100."))
    return int(text)


def price_points(user, raw, list_amount: int, cost: int) -> tuple[int, int]:
    """(points, their value in fen) for an order of `list_amount` and `cost`, checked against
    the buyer's balance and the cap; raises PointsError saying which limit was passed."""
    points = parse_points(raw)
    if not points:
        return 0, 0
    if user is None:
        raise PointsError(N_("Sign in to pay with points."))
    held = balance(user.id)
    if points > held:
        raise PointsError(N_("You have only %(balance)d points."), balance=held)
    most = max_points(list_amount, cost)
    if points > most:
        raise PointsError(
            N_(
                "Points may pay up to %(ratio)d%% of this order, and not below its cost: "
                "use at most %(most)d points."
            ),
            ratio=settings.get("points.max_ratio"),
            most=most,
        )
    return points, points * settings.get("points.value")


def held_for(order) -> int:
    """Points the pool holds for this order now: redeemed minus given back."""
    pool = ledger.system_account("points_pool")
    total = (
        Entry.select(fn.SUM(Entry.amount))
        .join(Journal)
        .where(
            (Journal.ref == order.order_no)
            & Journal.kind.in_(ORDER_KINDS)
            & (Entry.account == pool.id)
        )
        .scalar()
    )
    return int(total or 0)


def _idem(order) -> str:
    """The order's next points journal key: a retry of the same step replays, a later step
    (given back, taken again by a late payment, given back on its refund) gets its own."""
    done = (
        Journal.select()
        .where((Journal.ref == order.order_no) & Journal.kind.in_(ORDER_KINDS))
        .count()
    )
    return f"points:{order.order_no}:{done}"


def redeem(order, actor=None) -> None:
    """Take the order's points from the buyer into the pool."""
    try:
        ledger.transfer(
            ledger.user_account(order.user_id, "points"),
            ledger.system_account("points_pool"),
            order.points_used,
            REDEEM,
            ref=order.order_no,
            idem_key=_idem(order),
            actor=actor,
        )
    except ledger.InsufficientFunds as exc:
        raise PointsError(N_("You have only %(balance)d points."), balance=exc.balance) from None


def give_back(order, actor=None) -> int:
    """Return whatever the pool holds for the order to the buyer (refund, expiry,
    cancellation); returns the points given back."""
    held = held_for(order) if order.points_used else 0
    if held > 0:
        ledger.transfer(
            ledger.system_account("points_pool"),
            ledger.user_account(order.user_id, "points"),
            held,
            RETURN,
            ref=order.order_no,
            idem_key=_idem(order),
            actor=actor,
        )
    return held


def take_again(order) -> None:
    """A payment arrived for an expired order whose points went back: take them again, or
    raise PointsError when the buyer has spent them meanwhile (the payment is refunded)."""
    if order.points_used and held_for(order) == 0:
        redeem(order)
