"""The shop's time zone: where the people who read the shop's times live.

Times are stored as naive UTC (`shop.clock`) and stay so in the database, the API and the
CLI's JSON, which machines read. What a person reads is shown in the owner's zone, the
setting ``shop.timezone``: pages through flask-babel, whose timezone selector is `zone_name`,
and "today" and per-day figures from the shop's own midnight, converted back to naive UTC
for the queries.
"""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from shop import settings
from shop.clock import now
from shop.messages import N_
from shop.settings.registry import parse_timezone

settings.register(
    "shop.timezone",
    "Asia/Shanghai",
    N_("Time zone the shop's times and days are shown in (e.g. Asia/Shanghai, Europe/London)"),
    parse_timezone,
)


def zone_name() -> str:
    return settings.get("shop.timezone")


def zone() -> ZoneInfo:
    return ZoneInfo(zone_name())  # ZoneInfo keeps one instance per name: no file read per call


def local_date(moment: datetime) -> date:
    """The shop's calendar day at the naive UTC `moment`."""
    return moment.replace(tzinfo=UTC).astimezone(zone()).date()


def today() -> date:
    return local_date(now())


def day_start(day: date) -> datetime:
    """The naive UTC moment `day` begins in the shop's zone. Where a clock change skips
    midnight, zoneinfo reads the missing wall time with the offset before the change, which
    lands on the day's first real moment."""
    return datetime.combine(day, time(), tzinfo=zone()).astimezone(UTC).replace(tzinfo=None)
