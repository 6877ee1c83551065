"""A fixed-window attempt counter shared by every worker process through the database.

Used where a guess is cheap for an attacker and costly for a user: logins, order look-ups,
password resets. Keys are blind-indexed by the caller so no IP or email is stored in clear.

An attempt is counted before the work it guards, never after: with "check, do the slow
password hash, then count", every request that arrives while the first ones are hashing
passes the check, so parallel requests (across gunicorn workers too) get far more than the
limit of guesses.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import CharField, DateTimeField, IntegerField

from shop.clock import now
from shop.db import BaseModel, db, run


class Throttle(BaseModel):
    key = CharField(primary_key=True, max_length=128)
    count = IntegerField(default=0)
    window_start = DateTimeField(default=now)


@dataclass(frozen=True)
class Attempt:
    """One counted attempt: whether it may go ahead, and which window it was counted in."""

    key: str
    allowed: bool
    window_start: datetime | str  # as the driver returns it (SQLite: text), to match it again


# One statement adds the attempt to the key's live window (or opens a new window when the
# last one is over) and reads the new count back. The database runs concurrent upserts of one
# key one after the other (PostgreSQL locks the row, SQLite the file), so each caller gets a
# number of its own and no two see the same count.
_COUNT = (
    'INSERT INTO "throttle" ("key", "count", "window_start") VALUES (?, 1, ?) '
    'ON CONFLICT ("key") DO UPDATE SET '
    '"count" = CASE WHEN "throttle"."window_start" > ? THEN "throttle"."count" + 1 ELSE 1 END, '
    '"window_start" = CASE WHEN "throttle"."window_start" > ? '
    'THEN "throttle"."window_start" ELSE excluded."window_start" END '
    'RETURNING "count", "window_start"'
)


def attempt(key: str, limit: int, window: timedelta) -> Attempt:
    """Count one attempt for `key` now, before the caller does the work it guards; it may go
    ahead while it is one of the first `limit` of its window. Refused attempts are counted
    too, which changes nothing: the window still ends `window` after it began."""
    current = now()
    live_since = current - window
    with db.atomic():
        count, window_start = run(_COUNT, (key, current, live_since, live_since)).fetchone()
    return Attempt(key=key, allowed=count <= limit, window_start=window_start)


def forgive(counted: Attempt) -> None:
    """Take back an attempt that turned out right, so only wrong answers use up the limit.
    Only within the window it was counted in: a new window owes it nothing."""
    run(
        'UPDATE "throttle" SET "count" = "count" - 1 '
        'WHERE "key" = ? AND "window_start" = ? AND "count" > 0',
        (counted.key, counted.window_start),
    )


def clear(key: str) -> None:
    Throttle.delete().where(Throttle.key == key).execute()
