"""The plugin manager: which plugins are loaded, which are enabled, and how hooks are called.

Every discovered plugin is registered with pluggy once per process; whether it takes part in
a hook call is decided at call time from the enabled set in the database (cached for a couple
of seconds per process), so staff can toggle a plugin without a restart.
"""

import json
import logging
import time

import pluggy
from markupsafe import Markup, escape

from shop import hookspecs
from shop.audit import record
from shop.clock import now
from shop.crypto import decrypt, encrypt
from shop.db import db
from shop.messages import N_, Refusal
from shop.plugins.discovery import PluginInfo, discover
from shop.plugins.models import PluginState

log = logging.getLogger(__name__)
CACHE_SECONDS = 2.0


class PluginError(Refusal):
    """A refused plugin operation; the message is shown to staff or on the CLI."""


class Registry:
    def __init__(self, safe_mode: bool = False):
        self.safe_mode = safe_mode
        self.pm = pluggy.PluginManager("kashop")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._state: dict | None = None
        self._state_at = 0.0
        self._callers: dict[str, tuple[list, bool]] = {}
        if not safe_mode:
            for info in discover():
                if self._register(info):
                    self.plugins[info.name] = info

    def _register(self, info: PluginInfo) -> bool:
        """Register one plugin with pluggy. A hook implementation whose arguments do not match
        its spec is refused by pluggy; that plugin is logged and skipped like one that fails to
        import, instead of stopping the shop. A misspelt hook name would silently never be
        called, so it is logged as a warning."""
        try:
            self.pm.register(info.module, name=info.name)
        except pluggy.PluginValidationError:
            log.exception("plugin %s has an invalid hook implementation; skipped", info.name)
            return False
        for caller in self.pm.get_hookcallers(info.module) or []:
            if caller.spec is None:
                log.warning("plugin %s implements unknown hook %s", info.name, caller.name)
        return True

    # state -----------------------------------------------------------------------------

    def invalidate(self) -> None:
        self._state = None

    def _states(self) -> dict[str, PluginState]:
        if self._state is None or time.monotonic() - self._state_at > CACHE_SECONDS:
            self._state = {s.name: s for s in PluginState.select()}
            self._state_at = time.monotonic()
            self._callers = {}
        return self._state

    def is_enabled(self, name: str) -> bool:
        state = self._states().get(name)
        if state is None:
            return self.plugins[name].default_enabled if name in self.plugins else False
        return state.enabled

    def enabled_names(self) -> frozenset[str]:
        return frozenset(n for n in self.plugins if self.is_enabled(n))

    def info(self, name: str) -> PluginInfo:
        try:
            return self.plugins[name]
        except KeyError:
            known = ", ".join(sorted(self.plugins)) or "none"
            raise PluginError(
                N_("unknown plugin %(name)s; installed plugins: %(known)s"),
                name=repr(name),
                known=known,
            ) from None

    def set_enabled(self, name: str, enabled: bool, actor=None) -> None:
        info = self.info(name)
        check = getattr(info.module, "check_can_enable", None)
        if enabled and check is not None:
            problem = check(self.settings(name))
            if problem:
                raise PluginError(
                    N_("%(name)s cannot be enabled: %(problem)s"), name=name, problem=problem
                )
        with db.atomic():
            PluginState.insert(name=name, enabled=enabled, updated_at=now()).on_conflict(
                conflict_target=[PluginState.name],
                update={PluginState.enabled: enabled, PluginState.updated_at: now()},
            ).execute()
            record("plugin.enable" if enabled else "plugin.disable", target=name, actor=actor)
        self.invalidate()

    def settings(self, name: str) -> dict:
        """The plugin's settings with defaults filled in and secrets decrypted."""
        info = self.info(name)
        state = self._states().get(name)
        stored = json.loads(state.settings) if state else {}
        values = {}
        for item in info.settings:
            value = stored.get(item.key, item.default)
            if item.type == "secret" and value:
                value = decrypt(f"plugin.{name}", value)
            values[item.key] = value
        return values

    def save_settings(self, name: str, raw: dict, actor=None) -> dict:
        """Validate and store settings typed by staff; a blank secret keeps the old one."""
        info = self.info(name)
        unknown = set(raw) - {s.key for s in info.settings}
        if unknown:
            raise PluginError(
                N_("%(name)s has no setting %(keys)s"), name=name, keys=", ".join(sorted(unknown))
            )
        state = self._states().get(name)
        stored = json.loads(state.settings) if state else {}
        for item in info.settings:
            if item.key not in raw:
                continue
            value = str(raw[item.key]).strip()
            if item.type == "secret":
                if value:
                    stored[item.key] = encrypt(f"plugin.{name}", value)
                continue
            if item.type == "int":
                try:
                    stored[item.key] = int(value)
                except ValueError:
                    raise PluginError(
                        N_("%(label)s: %(value)s is not a whole number"),
                        label=item.label,
                        value=repr(value),
                    ) from None
            elif item.type == "bool":
                stored[item.key] = value.lower() in ("1", "true", "on", "yes")
            else:
                stored[item.key] = value
        with db.atomic():
            PluginState.insert(
                name=name,
                enabled=self.is_enabled(name),
                settings=json.dumps(stored),
                updated_at=now(),
            ).on_conflict(
                conflict_target=[PluginState.name],
                update={PluginState.settings: json.dumps(stored), PluginState.updated_at: now()},
            ).execute()
            record("plugin.settings", target=name, actor=actor, keys=sorted(raw))
        self.invalidate()
        return self.settings(name)

    # calling hooks ---------------------------------------------------------------------

    def _implementations(self, hook_name: str) -> tuple[list, bool]:
        """The enabled implementations of a hook in call order, and whether it stops at the
        first result; worked out once per enabled-state snapshot (a flash sale fires eight
        hooks an order, mostly with nobody listening)."""
        self._states()  # a fresh snapshot forgets the ones worked out before
        found = self._callers.get(hook_name)
        if found is None:
            enabled = self.enabled_names()
            hook = getattr(self.pm.hook, hook_name)
            impls = [i for i in reversed(hook.get_hookimpls()) if i.plugin_name in enabled]
            first_only = hook.spec is not None and hook.spec.opts.get("firstresult", False)
            found = self._callers[hook_name] = (impls, first_only)
        return found

    def fire(self, hook_name: str, **kwargs) -> list:
        """Call every enabled implementation, each on its own: one that raises is logged and
        the others still run. Returns the non-None results, in pluggy's call order; for a
        `firstresult` hook (`deliver`) the calls stop at the first one, as its spec promises."""
        impls, first_only = self._implementations(hook_name)
        results = []
        for impl in impls:
            args = {k: kwargs[k] for k in impl.argnames if k in kwargs}
            try:
                result = impl.function(**args)
            except Exception:
                log.exception("plugin %s failed in hook %s", impl.plugin_name, hook_name)
                continue
            if result is not None:
                results.append(result)
                if first_only:
                    break
        return results


_registry: Registry | None = None


def init(safe_mode: bool = False) -> Registry:
    global _registry
    _registry = Registry(safe_mode=safe_mode)
    return _registry


def registry() -> Registry:
    if _registry is None:
        raise RuntimeError("plugins are not initialised; create the app first")
    return _registry


def fire(hook_name: str, **kwargs) -> list:
    return registry().fire(hook_name, **kwargs) if _registry is not None else []


def collect(hook_name: str, **kwargs) -> list:
    """Flatten list results of a collecting hook such as `payment_gateways`."""
    return [item for result in fire(hook_name, **kwargs) for item in result]


def notify(event: str, **payload) -> None:
    """Tell plugins something happened. Inside a transaction, wait until it commits, so no mail
    goes out for a change that was rolled back."""
    db.after_commit(lambda: fire("notify", event=event, payload=payload))


def render_slot(name: str, context: dict) -> Markup:
    parts = fire("template_slot", name=name, context=context)
    return Markup("").join(p if isinstance(p, Markup) else escape(p) for p in parts)
