"""The shop's time zone: where the people who read the shop's times live.

Times are stored as naive UTC (`shop.clock`) and stay so in the database, the API and the
CLI's JSON, which machines read. What a person reads is shown in the owner's zone, the
setting ``shop.timezone``: pages through flask-babel, whose timezone selector is `zone_name`.
"""

from shop import settings
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
