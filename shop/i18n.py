"""Which language a page is shown in: the user's choice, then the visitor's cookie, then the
shop's default language."""

from flask import request
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
