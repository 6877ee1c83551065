"""Audit rules for points (DESIGN.md invariants 2 and 8), run by `shop audit` on a live
database. Set-based statements, as in `shop.orders.checks`."""

from peewee import JOIN, Case, Value, fn

from shop.ledger.models import Account, Entry, Journal
from shop.orders.models import Order
from shop.points.maturation import AWARD
from shop.points.models import ReferralAward
from shop.points.service import ORDER_KINDS

POOL = "shop:points_pool"
# orders that did not go through: their points are back with the buyer
GIVEN_BACK = ("cancelled", "expired", "refunded")


def order_points(limit: int = 100) -> list[str]:
    """The pool holds exactly the points of every order that used points and went through,
    nothing for one that did not, and nothing for an order that used none; an order that
    used points has a value for them and a list price of amount + points value."""
    in_pool = fn.COALESCE(fn.SUM(Case(None, [(Account.code == POOL, Entry.amount)], 0)), 0)
    expected = Case(None, [(Order.status.in_(GIVEN_BACK), 0)], Order.points_used)
    used = Order.points_used > 0
    rows = (
        Order.select(Order.order_no, Order.status, Order.points_used, Order.points_value, in_pool)
        .join(
            Journal,
            JOIN.LEFT_OUTER,
            on=((Journal.ref == Order.order_no) & Journal.kind.in_(ORDER_KINDS)),
        )
        .join(Entry, JOIN.LEFT_OUTER, on=(Entry.journal == Journal.id))
        .join(Account, JOIN.LEFT_OUTER, on=(Account.id == Entry.account))
        .group_by(
            Order.id,
            Order.order_no,
            Order.status,
            Order.points_used,
            Order.points_value,
            Order.amount,
            Order.unit_price,
            Order.quantity,
        )
        .having(
            (in_pool != expected)
            | (used != (Order.points_value > 0))
            | (used & (Order.amount + Order.points_value != Order.unit_price * Order.quantity))
        )
        .order_by(Order.id)
        .limit(limit)
        .tuples()
    )
    return [
        f"{status} order {order_no} used {used_} points worth {value}; the pool holds "
        f"{int(held)} for it"
        for order_no, status, used_, value, held in rows
    ]


def referral_awards(limit: int = 100) -> list[str]:
    """Each referral award has its own award journal, and each award journal its award:
    points were issued once per invited user, and only with the record that says so."""
    orphans = (
        Journal.select(Journal.id, Journal.ref)
        .join(ReferralAward, JOIN.LEFT_OUTER, on=(ReferralAward.journal_id == Journal.id))
        .where((Journal.kind == AWARD) & ReferralAward.id.is_null())
        .order_by(Journal.id)
        .limit(limit)
        .tuples()
    )
    problems = [f"award journal {jid} ({ref}) has no referral award" for jid, ref in orphans]
    unbacked = (
        ReferralAward.select(ReferralAward.id, ReferralAward.invited)
        .join(Journal, JOIN.LEFT_OUTER, on=(Journal.id == ReferralAward.journal_id))
        .where(
            Journal.id.is_null()
            | (Journal.kind != AWARD)
            | (Journal.ref != Value("user:").concat(ReferralAward.invited))
        )
        .order_by(ReferralAward.id)
        .limit(limit)
        .tuples()
    )
    problems += [
        f"referral award {aid} of user {invited} has no award journal of its own"
        for aid, invited in unbacked
    ]
    return problems
