"""A two-second cache of the storefront pages guests see: home, categories, products.

A flash sale sends thousands of guests to one product page; rendering it for each costs ~5 ms
of template work, serving it from memory a fraction of that. Only pages that are the same
for every guest are cached: a GET without a query string, from a visitor with no session
(so no flashed message, no remembered order) and not signed in. Each guest still gets a CSRF
token of their own: the page is cached with a placeholder that is swapped for the visitor's
token on the way out. When a page expires, one request renders it again while the others
keep getting the old copy, so a crowd never renders the same page at once. Stock and prices
shown may lag by `PAGE_CACHE_SECONDS` (default 2) plus one render; checkout always reads the
database, so a stale page can never sell what is gone.
"""

import functools
import time

from flask import current_app, g, request, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from shop import themes
from shop.i18n import current_language

PLACEHOLDER = "kashop-csrf-token-placeholder"
MAX_ENTRIES = 1024


def _cacheable() -> bool:
    return (
        request.method == "GET"
        and not request.query_string
        and not session
        and not current_user.is_authenticated
    )


def for_guests(view):
    """Serve `view`'s 200 answers to guests from the cache for a couple of seconds."""

    @functools.wraps(view)
    def wrapper(**kwargs):
        seconds = current_app.config.get("PAGE_CACHE_SECONDS", 2)
        if not seconds or not _cacheable():
            return view(**kwargs)
        pages = current_app.extensions.setdefault("kashop_pages", {})
        rendering = current_app.extensions.setdefault("kashop_pages_rendering", set())
        key = (request.path, current_language(), themes.active())
        hit = pages.get(key)
        clock = time.monotonic()
        if hit is not None and (hit[0] > clock or key in rendering):
            return hit[1].replace(PLACEHOLDER, generate_csrf())
        rendering.add(key)
        g.csrf_token = PLACEHOLDER  # flask-wtf reuses a token already on g for this request
        try:
            result = view(**kwargs)
        finally:
            g.pop("csrf_token", None)
            rendering.discard(key)
        body, status = result if isinstance(result, tuple) else (result, 200)
        if status == 200 and isinstance(body, str):
            if len(pages) >= MAX_ENTRIES:
                pages.clear()
            pages[key] = (clock + seconds, body)
        if isinstance(body, str):
            body = body.replace(PLACEHOLDER, generate_csrf())
        return body, status

    return wrapper
