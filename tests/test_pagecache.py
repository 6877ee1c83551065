"""The guest page cache: fast for guests, never shared across sessions where it matters."""

import re

from conftest import login
from selling import card_product

from shop.catalog.models import Product

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def viewed_then_renamed(app, cache_seconds: int):
    """A product a guest has viewed once (cached, with the cache on), renamed afterwards, so
    a page still showing the old name came from the cache. Returns it and the first page."""
    app.config["PAGE_CACHE_SECONDS"] = cache_seconds
    with app.app_context():
        product = card_product(keys=3)
    first = app.test_client().get(f"/p/{product.id}").get_data(as_text=True)
    with app.app_context():
        Product.update(name="Renamed Card").where(Product.id == product.id).execute()
    return product, first


def test_guests_get_the_cached_page_with_their_own_csrf_token(app, client, owner):
    product, first = viewed_then_renamed(app, 60)
    second_client = app.test_client()
    second = second_client.get(f"/p/{product.id}").get_data(as_text=True)
    assert "Renamed Card" not in second  # served from the cache
    assert "placeholder" not in second
    assert TOKEN.findall(first) and TOKEN.findall(second)
    assert TOKEN.findall(first)[0] != TOKEN.findall(second)[0]
    # the cached page's token is this visitor's own: buying with it passes CSRF
    token = TOKEN.findall(second)[0]
    response = second_client.post(
        f"/p/{product.id}/buy",
        data={
            "csrf_token": token,
            "quantity": "1",
            "contact": "g@example.com",
            "query_password": "secret-1",
        },
    )
    assert response.status_code in (302, 303)


def test_signed_in_visitors_and_query_strings_bypass_the_cache(app, client, owner):
    product, _ = viewed_then_renamed(app, 60)
    login(client, *owner)
    assert "Renamed Card" in client.get(f"/p/{product.id}").get_data(as_text=True)
    guest = app.test_client()
    assert "Renamed Card" in guest.get(f"/p/{product.id}?x=1").get_data(as_text=True)


def test_cache_off_serves_fresh_pages(app, client, owner):
    product, _ = viewed_then_renamed(app, 0)
    assert "Renamed Card" in app.test_client().get(f"/p/{product.id}").get_data(as_text=True)


def test_an_expired_page_is_rendered_by_one_request_while_the_rest_get_the_old_copy(
    app, client, owner
):
    product, _ = viewed_then_renamed(app, 60)
    pages = app.extensions["kashop_pages"]
    (key,) = [k for k in pages if k[0] == f"/p/{product.id}"]
    pages[key] = (0, pages[key][1])  # expired
    app.extensions["kashop_pages_rendering"].add(key)  # another request is rendering it
    crowd = app.test_client().get(f"/p/{product.id}").get_data(as_text=True)
    assert "Renamed Card" not in crowd and TOKEN.findall(crowd)
    app.extensions["kashop_pages_rendering"].discard(key)  # that render finished or failed
    assert "Renamed Card" in app.test_client().get(f"/p/{product.id}").get_data(as_text=True)
    assert key not in app.extensions["kashop_pages_rendering"]
