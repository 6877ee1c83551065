"""The demo catalog an owner can load at setup to see the shop working at once.

Each area of the shop that has demo data registers a loader here; loading twice adds nothing
twice (each loader checks what is already there).
"""

from collections.abc import Callable

_LOADERS: list[Callable] = []


def loader(fn: Callable) -> Callable:
    _LOADERS.append(fn)
    return fn


def load(actor=None) -> list[str]:
    """Run every registered loader; returns what each added, for the CLI and the log."""
    return [msg for fn in _LOADERS if (msg := fn(actor=actor))]


# each area's loader, registered on import; imported last because they import `loader`
from shop.catalog import demo as _catalog_demo  # noqa: E402, F401
