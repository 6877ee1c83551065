from dataclasses import dataclass

from flask import url_for
from flask_babel import lazy_gettext as _l

from shop import plugins


@dataclass(frozen=True)
class NavItem:
    label: object
    endpoint: str
    order: int


_ITEMS: list[NavItem] = []


def nav_item(label, endpoint: str, order: int) -> None:
    """Add a page to the admin navigation (once per endpoint)."""
    if all(item.endpoint != endpoint for item in _ITEMS):
        _ITEMS.append(NavItem(label, endpoint, order))
        _ITEMS.sort(key=lambda item: item.order)


def entries() -> list[tuple[str, str, str]]:
    """(label, url, endpoint) for the core pages, then the plugins' pages."""
    core = [(str(i.label), url_for(i.endpoint), i.endpoint) for i in _ITEMS]
    extra = [(str(label), url, "") for label, url in plugins.collect("admin_menu")]
    return core + extra


for _label, _endpoint, _order in (
    (_l("Dashboard"), "admin.dashboard", 0),
    (_l("Users"), "admin.users", 80),
    (_l("Settings"), "admin.settings_page", 90),
    (_l("Plugins"), "admin.plugins_page", 92),
    (_l("Themes"), "admin.themes_page", 94),
    (_l("Audit log"), "admin.audit_page", 96),
):
    nav_item(_label, _endpoint, _order)
