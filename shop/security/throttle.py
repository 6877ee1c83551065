"""A fixed-window attempt counter shared by every worker process through the database.

Used where a guess is cheap for an attacker and costly for a user: logins, order look-ups,
password resets. Keys are blind-indexed by the caller so no IP or email is stored in clear.
"""

from datetime import timedelta

from peewee import CharField, DateTimeField, IntegerField

from shop.clock import now
from shop.db import BaseModel, db


class Throttle(BaseModel):
    key = CharField(primary_key=True, max_length=128)
    count = IntegerField(default=0)
    window_start = DateTimeField(default=now)


def blocked(key: str, limit: int, window: timedelta) -> bool:
    """True when `key` has used up its `limit` attempts in the current window."""
    row = Throttle.get_or_none(Throttle.key == key)
    return row is not None and row.window_start > now() - window and row.count >= limit


def hit(key: str, window: timedelta) -> int:
    """Count one attempt for `key`; returns the attempts in the current window."""
    current = now()
    with db.atomic():
        row = Throttle.get_or_none(Throttle.key == key)
        if row is None or row.window_start <= current - window:
            Throttle.insert(key=key, count=1, window_start=current).on_conflict(
                conflict_target=[Throttle.key],
                update={Throttle.count: 1, Throttle.window_start: current},
            ).execute()
            return 1
        Throttle.update(count=Throttle.count + 1).where(Throttle.key == key).execute()
        return row.count + 1


def clear(key: str) -> None:
    Throttle.delete().where(Throttle.key == key).execute()
