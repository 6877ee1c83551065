"""Finding plugins: folders under plugins/ and installed packages with a `kashop.plugins`
entry point. Each carries metadata (plugin.json, or a PLUGIN dict for packages) and a module
of ``@hookimpl`` functions."""

import importlib.util
import json
import logging
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from shop.config import ROOT

log = logging.getLogger(__name__)
PLUGIN_DIR = ROOT / "plugins"
SETTING_TYPES = ("text", "secret", "int", "bool")


@dataclass
class SettingField:
    key: str
    label: str
    type: str = "text"
    default: object = ""
    help: str = ""


@dataclass
class PluginInfo:
    name: str
    version: str
    description: str
    module: ModuleType
    author: str = ""
    default_enabled: bool = False
    settings: list[SettingField] = field(default_factory=list)
    source: str = "folder"

    def setting(self, key: str) -> SettingField | None:
        return next((s for s in self.settings if s.key == key), None)


def _info(meta: dict, module: ModuleType, source: str) -> PluginInfo:
    fields = []
    for raw in meta.get("settings", []):
        item = SettingField(**raw)
        if item.type not in SETTING_TYPES:
            raise ValueError(f"setting {item.key!r} has unknown type {item.type!r}")
        fields.append(item)
    return PluginInfo(
        name=meta["name"],
        version=str(meta.get("version", "0")),
        description=meta.get("description", ""),
        author=meta.get("author", ""),
        default_enabled=bool(meta.get("default_enabled", False)),
        settings=fields,
        module=module,
        source=source,
    )


def _load_folder(path: Path) -> PluginInfo:
    meta = json.loads((path / "plugin.json").read_text(encoding="utf-8"))
    mod_name = f"kashop_plugins.{path.name}"
    module = sys.modules.get(mod_name)
    # Reuse the module only if it came from this very folder: another plugins/ directory
    # (tests, a second instance in one process) may hold a different plugin of that name.
    if module is None or Path(module.__file__) != path / "__init__.py":
        spec = importlib.util.spec_from_file_location(
            mod_name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules[mod_name]
            raise
    meta.setdefault("name", path.name)
    return _info(meta, module, "folder")


def discover(plugin_dir: Path | None = None) -> list[PluginInfo]:
    """Every loadable plugin; a broken one is logged and skipped, never fatal to the shop.

    PLUGIN_DIR is read at call time, not bound as a default, so it can be pointed elsewhere."""
    plugin_dir = plugin_dir or PLUGIN_DIR
    found: dict[str, PluginInfo] = {}
    if plugin_dir.is_dir():
        for path in sorted(plugin_dir.iterdir()):
            if (path / "plugin.json").is_file() and (path / "__init__.py").is_file():
                try:
                    info = _load_folder(path)
                except Exception:
                    log.exception("plugin folder %s failed to load; skipped", path)
                    continue
                found[info.name] = info
    for ep in entry_points(group="kashop.plugins"):
        try:
            module = ep.load()
            meta = dict(getattr(module, "PLUGIN", {}))
            meta.setdefault("name", ep.name)
            info = _info(meta, module, f"package {ep.value}")
        except Exception:
            log.exception("plugin entry point %s failed to load; skipped", ep.name)
            continue
        found.setdefault(info.name, info)
    return list(found.values())
