"""Reading and writing settings, with a short per-process cache.

Settings are read on every page (shop name, theme), so each process keeps them for a
second or two; a change made in this process is visible at once, other gunicorn workers
pick it up within `CACHE_SECONDS`.
"""

import json
import time

from shop.audit import record
from shop.clock import now
from shop.db import db
from shop.messages import N_
from shop.settings.models import Setting
from shop.settings.registry import SettingError, spec, specs

CACHE_SECONDS = 2.0
_cache: dict = {"at": 0.0, "values": None}


def invalidate() -> None:
    _cache["values"] = None


def _stored() -> dict:
    values = _cache["values"]
    if values is None or time.monotonic() - _cache["at"] > CACHE_SECONDS:
        values = {row.key: json.loads(row.value) for row in Setting.select()}
        _cache.update(at=time.monotonic(), values=values)
    return values


def get(key: str):
    item = spec(key)
    return _stored().get(key, item.default)


def get_all() -> dict:
    stored = _stored()
    return {item.key: stored.get(item.key, item.default) for item in specs()}


def set_value(key: str, raw: str, actor=None):
    """Validate `raw` for `key`, store it and audit the change; returns the parsed value."""
    item = spec(key)
    value = item.parse(raw)
    if item.choices is not None and value not in item.choices():
        raise SettingError(
            N_("%(value)s is not one of: %(choices)s"),
            value=repr(value),
            choices=", ".join(item.choices()),
        )
    with db.atomic():
        Setting.insert(key=key, value=json.dumps(value), updated_at=now()).on_conflict(
            conflict_target=[Setting.key],
            update={Setting.value: json.dumps(value), Setting.updated_at: now()},
        ).execute()
        record("settings.set", target=key, actor=actor, value="***" if item.secret else value)
    invalidate()
    return value


__all__ = ["SettingError", "get", "get_all", "invalidate", "set_value"]
