from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytz

from shop.messages import N_, Message, Refusal


class SettingError(Refusal):
    """A setting key or value the shop refuses; the message is shown to the person who typed it."""


@dataclass(frozen=True)
class SettingSpec:
    key: str
    default: Any
    description: str
    parse: Callable[[str], Any]
    choices: Callable[[], list[str]] | None = None
    secret: bool = False
    group: str = field(default="")

    def __post_init__(self):
        if not self.group:
            object.__setattr__(self, "group", self.key.split(".", 1)[0])


_REGISTRY: dict[str, SettingSpec] = {}


def register(key, default, description, parse=str, choices=None, secret=False) -> SettingSpec:
    item = SettingSpec(key, default, description, parse, choices, secret)
    _REGISTRY[key] = item
    return item


def spec(key: str) -> SettingSpec:
    try:
        return _REGISTRY[key]
    except KeyError:
        raise SettingError(
            N_("unknown setting %(key)s; known settings: %(keys)s"),
            key=repr(key),
            keys=", ".join(sorted(_REGISTRY)),
        ) from None


def specs() -> list[SettingSpec]:
    return sorted(_REGISTRY.values(), key=lambda s: s.key)


# Parsers turn what a person typed into a stored value, raising SettingError with a reason.


def parse_text(max_len: int = 200):
    def parse(raw: str) -> str:
        value = raw.strip()
        if not value:
            raise SettingError(N_("a value is required"))
        if len(value) > max_len:
            raise SettingError(N_("at most %(count)d characters"), count=max_len)
        return value

    return parse


def parse_int(lo: int, hi: int, unit: str = ""):
    """A whole number from `lo` to `hi`. `unit` (marked with N_, e.g. N_("minutes")) is said
    with the bounds when one is refused: "between 1 and 1440 minutes" tells the person what
    the number counts, which "between 1 and 1440" leaves them to guess."""

    def parse(raw: str) -> int:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise SettingError(N_("%(value)s is not a whole number"), value=repr(raw)) from None
        if not lo <= value <= hi:
            raise _out_of_range(lo, hi, unit)
        return value

    return parse


def _out_of_range(lo: int, hi: int, unit: str) -> SettingError:
    if not unit:
        return SettingError(N_("must be between %(lo)d and %(hi)d"), lo=lo, hi=hi)
    return SettingError(
        N_("must be between %(lo)d and %(hi)d %(unit)s"), lo=lo, hi=hi, unit=Message(unit)
    )


def parse_bool(raw: str) -> bool:
    value = str(raw).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingError(N_("%(value)s is not true or false"), value=repr(raw))


def parse_timezone(raw: str) -> str:
    """An IANA time zone name such as Asia/Shanghai, exactly as spelled there.

    The shop computes its days with `zoneinfo`, while flask-babel formats times with pytz; a
    name must be known to both, so the system's extra files (``localtime``, ``posix/...``),
    which only `zoneinfo` reads, are refused rather than break every page that shows a time.
    """
    value = str(raw).strip()
    try:
        ZoneInfo(value)
        known = value in pytz.all_timezones_set
    except (ZoneInfoNotFoundError, ValueError):
        known = False
    if not known:
        raise SettingError(
            N_("%(value)s is not a time zone; use a name such as Asia/Shanghai or Europe/London"),
            value=repr(raw),
        )
    return value
