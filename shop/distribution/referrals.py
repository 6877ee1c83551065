"""Who invited whom: the invite cookie, binding a referrer, the chain above a user and the
downline below.

A visitor who opens `/r/<code>` carries the code in a cookie; registering binds that referrer
(`shop.accounts.service.register`), and a guest's order names them (`Order.referrer_id`).
The first invite link opened wins: a later one does not replace the cookie. Once bound, the
referrer is never changed by the user; staff can, audited, and never into a cycle (A invited
B invited A), which would make the commission chain endless.
"""

from shop.accounts.models import User
from shop.accounts.service import find_by_invite_code
from shop.audit import record
from shop.db import db, lock_for_transaction
from shop.messages import N_, Refusal

REFERRER_CHANGE_LOCK = 0x6B617368_5245  # "kash" "RE": one referrer change at a time
REFERRAL_COOKIE = "ref"
COOKIE_DAYS = 180
DOWNLINE_SHOWN = 50  # members listed per level on a screen; the count covers all of them


class ReferralError(Refusal):
    """A refused referrer change; the message is fit to show the staff member who asked."""


def cookie_referrer(cookies) -> User | None:
    """The user the visitor's invite cookie names, if it names one."""
    return find_by_invite_code(cookies.get(REFERRAL_COOKIE, ""))


def cookie_referrer_id(cookies) -> int | None:
    referrer = cookie_referrer(cookies)
    return referrer.id if referrer else None


def to_remember(code: str, cookies) -> User | None:
    """Whose invite the visitor's cookie should name now that they opened `code`'s link: the
    code's owner, unless the cookie already names somebody (first touch wins) or the code is
    nobody's (None: nothing to remember)."""
    if cookie_referrer(cookies) is not None:
        return None
    return find_by_invite_code(code)


def upline(user: User, limit: int) -> list[User]:
    """The referrer chain above `user`, nearest first, at most `limit` long. Stops at a repeat
    too: cycles are refused when written, but a chain read must end whatever the data says."""
    chain, seen = [], {user.id}
    next_id = user.referrer_id
    while next_id and len(chain) < limit and next_id not in seen:
        above = User.get_or_none(User.id == next_id)
        if above is None:
            break
        chain.append(above)
        seen.add(above.id)
        next_id = above.referrer_id
    return chain


def check_referrer(user: User, referrer: User) -> None:
    """Refuse a referrer that is the user or somewhere below them (walking up from the
    referrer would come back to the user: a cycle)."""
    if referrer.id == user.id:
        raise ReferralError(N_("Nobody can be their own referrer."))
    seen = set()
    next_id = referrer.referrer_id
    while next_id and next_id not in seen:
        if next_id == user.id:
            raise ReferralError(
                N_("%(code)s was invited by this user, directly or further down: a cycle."),
                code=referrer.invite_code,
            )
        seen.add(next_id)
        next_id = User.select(User.referrer).where(User.id == next_id).scalar()


def change_referrer(user: User, code: str, actor, reason: str = "") -> User | None:
    """Staff bind `user` to the owner of invite `code`, or (blank) to nobody. Audited with the
    old and new referrer. Commission already created stays with the chain it was paid to.

    The cycle check reads the tree inside the transaction that changes it, and changes are
    taken one at a time: two staff moving A under B and B under A at once would otherwise
    each see no cycle and together make one (on SQLite the write lock already orders them;
    on PostgreSQL an advisory lock does)."""
    code = (code or "").strip()
    with db.atomic():
        lock_for_transaction(REFERRER_CHANGE_LOCK)
        referrer = None
        if code:
            referrer = find_by_invite_code(code)
            if referrer is None:
                raise ReferralError(N_("No account has the invite code %(code)s."), code=repr(code))
            check_referrer(user, referrer)
        old = User.select(User.referrer).where(User.id == user.id).scalar()
        User.update(referrer=referrer).where(User.id == user.id).execute()
        record(
            "user.referrer",
            target=f"user:{user.id}",
            actor=actor,
            old=old,
            new=referrer.id if referrer else None,
            reason=(reason or "").strip()[:200],
        )
    user.referrer = referrer
    return referrer


def _level_ids(user_id: int, depth: int):
    """A subquery of the ids `depth` invitations below the user (1: whom they invited)."""
    query = User.select(User.id).where(User.referrer == user_id)
    for _ in range(depth - 1):
        query = User.select(User.id).where(User.referrer.in_(query))
    return query


def downline(user: User, levels: int) -> list[dict]:
    """Per level below the user: how many members it has and the first `DOWNLINE_SHOWN` of
    them, newest first. One count and one list query per level, each over the referrer index."""
    result = []
    for depth in range(1, levels + 1):
        members = User.select().where(User.id.in_(_level_ids(user.id, depth)))
        result.append(
            {
                "depth": depth,
                "count": members.count(),
                "members": list(members.order_by(User.id.desc()).limit(DOWNLINE_SHOWN)),
            }
        )
    return result
