"""Which language a page is shown in: the user's choice, then the visitor's cookie, then the
shop's default language."""

from babel import Locale
from flask import request
from flask_babel import get_locale
from flask_login import current_user

from shop import settings
from shop.messages import N_

LANGUAGES = {"zh_CN": "中文", "en": "English"}

settings.register(
    "shop.language",
    "zh_CN",
    N_("Default language of the shop (zh_CN or en)"),
    choices=lambda: list(LANGUAGES),
)


def select_locale() -> str:
    if current_user and getattr(current_user, "locale", None) in LANGUAGES:
        return current_user.locale
    cookie = request.cookies.get("lang")
    if cookie in LANGUAGES:
        return cookie
    return settings.get("shop.language")


_PARSED = {code: Locale.parse(code) for code in LANGUAGES}  # parsing costs ~1 ms: do it once


def current_language() -> str:
    """The page's language as one of the `LANGUAGES` codes, for templates to compare.

    Babel expands zh_CN to zh_Hans_CN (likely subtags), so ``str(get_locale()) == "zh_CN"``
    never holds; the catalog lives in translations/zh_Hans_CN for the same reason.
    """
    locale = get_locale()
    for code, parsed in _PARSED.items():
        if locale == parsed:
            return code
    return "en"
