"""Referral awards: when an invited user has stayed long enough, bought, and broken no rule,
both they and their referrer get points, once.

An invited user (one with a referrer) matures when all of these hold:
- `points.referral_days` days have passed since they registered;
- at least one of their orders is completed;
- no violation: nothing staff recorded (`Violation`: fraud, chargeback, abuse), no order of
  theirs held by the risk check and then refunded (a risk rejection), and their account is
  not disabled (a ban). A disabled referrer gets nothing either; the pair matures when
  staff enable the account again.

The award is one ledger journal (points_pool → both users' points accounts) and one
`ReferralAward` row with the invited user's id, unique, written in the same transaction. Two
jobs running at once both find the user eligible; only one insert of that row can commit, so
the other's transaction rolls back whole, journal included.
"""

from datetime import timedelta

from peewee import IntegrityError, fn

from shop import ledger, settings
from shop.accounts.models import User
from shop.audit import record
from shop.clock import now
from shop.db import db
from shop.messages import N_, Refusal
from shop.orders.models import Order, OrderEvent
from shop.points.models import VIOLATION_KINDS, ReferralAward, Violation

AWARD = "points.award"
BATCH = 500


class ViolationError(Refusal):
    """A violation that cannot be recorded as typed."""


def _eligible(cutoff):
    """Invited users who mature by `cutoff` and were not awarded yet: one query, each rule a
    correlated EXISTS on an indexed column."""
    referrer = User.alias()
    completed = Order.select(Order.id).where(
        (Order.user == User.id) & (Order.status == "completed")
    )
    recorded = Violation.select(Violation.id).where(Violation.user == User.id)
    rejected = (
        OrderEvent.select(OrderEvent.id)
        .join(Order)
        .where(
            (Order.user == User.id)
            & (OrderEvent.from_status == "held")
            & (OrderEvent.to_status == "refunded")
        )
    )
    awarded = ReferralAward.select(ReferralAward.id).where(ReferralAward.invited == User.id)
    return (
        User.select(User.id, User.referrer)
        .join(referrer, on=(User.referrer == referrer.id))
        .where(
            User.is_active
            & referrer.is_active
            & (User.created_at <= cutoff)
            & fn.EXISTS(completed)
            & ~fn.EXISTS(recorded)
            & ~fn.EXISTS(rejected)
            & ~fn.EXISTS(awarded)
        )
        .order_by(User.id)
    )


def mature(limit: int = BATCH) -> int:
    """Award every invited user who matured (the daily job and `points mature`); returns
    how many were awarded now. Safe to run concurrently and as often as wanted."""
    points = settings.get("points.referral_award")
    if points <= 0:
        return 0
    cutoff = now() - timedelta(days=settings.get("points.referral_days"))
    invited = [row.id for row in _eligible(cutoff).limit(limit)]
    return sum(1 for user_id in invited if _award(user_id, cutoff, points))


def _award(invited_id: int, cutoff, points: int) -> bool:
    """Award one invited user and their referrer, if still eligible; False when another run
    (or a violation recorded meanwhile) got there first."""
    try:
        with db.atomic():
            row = _eligible(cutoff).where(User.id == invited_id).first()
            if row is None:
                return False
            journal = ledger.post(
                [
                    (ledger.system_account("points_pool"), -2 * points),
                    (ledger.user_account(row.referrer_id, "points"), points),
                    (ledger.user_account(invited_id, "points"), points),
                ],
                AWARD,
                ref=f"user:{invited_id}",
                idem_key=f"points:award:{invited_id}",
            )
            ReferralAward.create(
                invited=invited_id, referrer=row.referrer_id, points=points, journal_id=journal.id
            )
            record(
                "points.award",
                target=f"user:{invited_id}",
                referrer=row.referrer_id,
                points=points,
            )
    except IntegrityError:
        return False
    return True


def record_violation(user: User, kind: str, note: str = "", order_no: str = "", actor=None):
    """Staff record a violation: the user (and so their referrer) gets no referral award."""
    kind = (kind or "").strip().lower()
    if kind not in VIOLATION_KINDS:
        raise ViolationError(
            N_("The kind must be one of: %(kinds)s."), kinds=", ".join(VIOLATION_KINDS)
        )
    order_no = (order_no or "").strip()
    theirs = Order.select().where((Order.order_no == order_no) & (Order.user == user.id))
    if order_no and not theirs.exists():
        raise ViolationError(N_("The user has no order %(order_no)s."), order_no=order_no)
    with db.atomic():
        violation = Violation.create(
            user=user.id,
            kind=kind,
            order_no=order_no,
            note=(note or "").strip()[:1000],
            actor_id=getattr(actor, "id", actor),
        )
        record("user.violation", target=f"user:{user.id}", actor=actor, kind=kind, order=order_no)
    return violation
