"""Figures on the dashboard. Each area adds a card provider; each is one cheap query.

A card is `(label, value)` or `(label, value, url)`: a queue's card links to the list that
works it off."""

from collections.abc import Callable

from flask_babel import lazy_gettext as _l

from shop.accounts.models import User

_PROVIDERS: list[Callable[[], list[tuple]]] = []


def card_provider(fn):
    _PROVIDERS.append(fn)
    return fn


def cards() -> list[tuple]:
    return [card for fn in _PROVIDERS for card in fn()]


@card_provider
def _accounts():
    return [
        (str(_l("Customers")), User.select().where(User.role == "customer").count()),
        (str(_l("Staff")), User.select().where(User.role != "customer").count()),
    ]
