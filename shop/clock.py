"""The shop's one clock: naive UTC datetimes, stored the same way on SQLite and PostgreSQL.

Everything that asks "what time is it" asks here, so expiry, escrow windows and the 90-day
points rule can be tested by moving this clock instead of sleeping.
"""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
