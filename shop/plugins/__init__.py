"""Plugins: discovery, enabled state and settings, and the calls the shop makes into them."""

from shop.hookspecs import hookimpl
from shop.plugins.manager import (
    PluginError,
    collect,
    fire,
    init,
    notify,
    registry,
    render_slot,
)

__all__ = [
    "PluginError",
    "collect",
    "fire",
    "hookimpl",
    "init",
    "notify",
    "registry",
    "render_slot",
]
