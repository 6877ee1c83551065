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
from shop.settings.registry import SettingError, SettingSpec, spec, specs

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
    value = _parsed(item, raw)
    with db.atomic():
        Setting.insert(key=key, value=json.dumps(value), updated_at=now()).on_conflict(
            conflict_target=[Setting.key],
            update={Setting.value: json.dumps(value), Setting.updated_at: now()},
        ).execute()
        record("settings.set", target=key, actor=actor, value="***" if item.secret else value)
    invalidate()
    return value


def _parsed(item: SettingSpec, raw: str):
    """The value typed for the setting, or a refusal that names the setting: on the command
    line the message is all a person sees, and "must be between 1 and 1440 minutes" alone
    does not say which of several settings in a script was refused."""
    try:
        value = item.parse(raw)
        if item.choices is not None and value not in item.choices():
            raise SettingError(
                N_("%(value)s is not one of: %(choices)s"),
                value=repr(value),
                choices=", ".join(item.choices()),
            )
    except SettingError as exc:
        raise SettingError(N_("%(key)s: %(problem)s"), key=item.key, problem=exc) from None
    return value


__all__ = ["SettingError", "get", "get_all", "invalidate", "set_value"]
