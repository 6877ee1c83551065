"""The shop's time zone (setting shop.timezone): times are stored in UTC and shown on pages in
the owner's zone, and a name that is not a time zone is refused."""

from datetime import datetime

import pytest
from conftest import login, submit
from selling import card_product

from shop import settings
from shop.orders.models import Order, OrderEvent
from shop.settings import SettingError
from shop.settings.registry import parse_timezone

GUEST = {"contact": "guest@example.com", "query_password": "open-sesame"}
# 23:30 UTC on 1 July: already 07:30 on 2 July in Shanghai (UTC+8), 00:30 in London (BST)
LATE_EVENING = datetime(2026, 7, 1, 23, 30)


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def staff(client, owner):
    login(client, *owner)
    return client


def placed_at(app, client, moment: datetime) -> str:
    """A guest's order bought through the page (the browser may see it), dated `moment` UTC."""
    with app.app_context():
        pid = card_product(keys=3).id
    bought = submit(client, f"/p/{pid}/buy", {"quantity": "1", **GUEST}, form_url=f"/p/{pid}")
    assert bought.status_code == 302, text(bought)
    order_no = bought.headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        order = Order.get(Order.order_no == order_no)
        Order.update(created_at=moment).where(Order.id == order.id).execute()
        OrderEvent.update(created_at=moment).where(OrderEvent.order == order.id).execute()
    return order_no


def set_zone(app, name: str) -> None:
    with app.app_context():
        settings.set_value("shop.timezone", name)


# shown in the shop's zone ---------------------------------------------------------------------


def test_the_admin_order_page_shows_shanghai_time_then_london_after_the_change(app, client, staff):
    order_no = placed_at(app, client, LATE_EVENING)
    page = text(staff.get(f"/admin/orders/{order_no}"))
    assert "<dd>2026-07-02 07:30:00</dd>" in page  # Placed, to the second
    assert "2026-07-01 23:30" not in page and "UTC" not in page
    assert "Times in Asia/Shanghai" in page

    changed = submit(staff, "/admin/settings", {"setting:shop.timezone": "Europe/London"})
    assert changed.status_code == 302
    page = text(staff.get(f"/admin/orders/{order_no}"))
    assert "<dd>2026-07-02 00:30:00</dd>" in page and "Times in Europe/London" in page
    assert order_no in text(staff.get("/admin/orders"))
    assert "2026-07-02 00:30" in text(staff.get("/admin/orders"))


def test_the_customers_order_page_shows_the_shops_wall_time(app, client, owner):
    order_no = placed_at(app, client, LATE_EVENING)
    assert "<dd>2026-07-02 07:30</dd>" in text(client.get(f"/o/{order_no}"))
    set_zone(app, "Europe/London")
    page = text(client.get(f"/o/{order_no}"))
    assert "<dd>2026-07-02 00:30</dd>" in page and "07:30" not in page


def test_the_settings_page_offers_the_time_zone_with_its_default(staff):
    page = text(staff.get("/admin/settings"))
    assert 'name="setting:shop.timezone" value="Asia/Shanghai"' in page


# refused names --------------------------------------------------------------------------------


def test_a_name_that_is_not_a_time_zone_is_refused_and_changes_nothing(app, staff):
    refused = submit(staff, "/admin/settings", {"setting:shop.timezone": "Mars/Olympus"})
    assert refused.status_code == 400
    assert "&#39;Mars/Olympus&#39; is not a time zone" in text(refused)
    with app.app_context():
        assert settings.get("shop.timezone") == "Asia/Shanghai"
    assert "Times in Asia/Shanghai" in text(staff.get("/admin/"))


@pytest.mark.parametrize(
    "raw", ["", "Mars/Olympus", "asia/shanghai", "../etc/passwd", "/etc/localtime", "localtime"]
)
def test_the_parser_refuses_what_is_not_an_iana_zone_name(raw):
    # "localtime" is a file only the system's zoneinfo has; pages could never show it
    with pytest.raises(SettingError, match="is not a time zone"):
        parse_timezone(raw)


def test_the_parser_keeps_a_known_name_without_spaces():
    assert parse_timezone(" Europe/London ") == "Europe/London"
