"""Owner-editable settings: a registry of known keys, each typed, validated and defaulted.

Every area of the shop declares its settings with `register(...)` next to the code that reads
them. An unknown key is refused, so a typo never silently creates a setting nobody reads.
"""

from shop.settings.registry import SettingError, SettingSpec, register, spec, specs
from shop.settings.service import get, get_all, set_value

__all__ = [
    "SettingError",
    "SettingSpec",
    "get",
    "get_all",
    "register",
    "set_value",
    "spec",
    "specs",
]
