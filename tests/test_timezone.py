"""The shop's time zone (setting shop.timezone): times are stored in UTC and shown on pages in
the owner's zone, "today" and per-day figures start at the owner's midnight, and a name that
is not a time zone is refused."""

import re
from datetime import datetime

import pytest
from conftest import login, submit
from selling import card_product, customer, pending_order

from shop import localtime, settings
from shop.distribution import overview
from shop.distribution.models import Commission
from shop.orders import numbers
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


# the shop's day -------------------------------------------------------------------------------


def stat(page: str, label: str) -> str:
    match = re.search(
        rf'<span class="stat-value">([^<]*)</span><span class="stat-label">{label}</span>', page
    )
    assert match, f"no {label!r} card"
    return match.group(1)


@pytest.mark.pg
def test_orders_today_counts_from_the_shops_midnight(app, client, staff, monkeypatch):
    # 02:00 UTC on 2 July is 10:00 in Shanghai: its day began at 16:00 UTC on 1 July
    monkeypatch.setattr(localtime, "now", lambda: datetime(2026, 7, 2, 2, 0))
    placed_at(app, client, LATE_EVENING)  # 07:30 today in Shanghai
    placed_at(app, client, datetime(2026, 7, 1, 15, 30))  # 23:30 yesterday in Shanghai
    page = text(staff.get("/admin/"))
    assert stat(page, "Orders today") == "1"
    assert "(UTC)" not in page

    set_zone(app, "UTC")  # by UTC's day, neither was placed on 2 July
    assert stat(text(staff.get("/admin/")), "Orders today") == "0"


def test_day_start_is_the_shops_midnight_in_naive_utc(app):
    with app.app_context():
        assert localtime.day_start(datetime(2026, 7, 2).date()) == datetime(2026, 7, 1, 16, 0)
        set_zone(app, "Europe/London")
        assert localtime.day_start(datetime(2026, 7, 2).date()) == datetime(2026, 7, 1, 23, 0)
        assert localtime.day_start(datetime(2026, 1, 2).date()) == datetime(2026, 1, 2, 0, 0)


@pytest.mark.pg
def test_earnings_per_day_fall_on_the_shops_days(app, owner, monkeypatch):
    monkeypatch.setattr(localtime, "now", lambda: datetime(2026, 7, 2, 2, 0))
    with app.app_context():
        user = customer()
        for moment, amount in ((LATE_EVENING, 100), (datetime(2026, 7, 1, 15, 30), 40)):
            Commission.create(
                order=pending_order(card_product()),  # one commission per order and user
                user=user,
                depth=1,
                rate_bps=1000,
                amount=amount,
                status="pending",
                created_at=moment,
            )
        days = overview.earnings_by_day(user, days=3)
    assert days == [("2026-06-30", 0), ("2026-07-01", 40), ("2026-07-02", 100)]


def test_order_numbers_carry_the_shops_date(app, owner, monkeypatch):
    monkeypatch.setattr(localtime, "now", lambda: LATE_EVENING)
    with app.app_context():
        assert numbers.new_order_no().startswith("K260702")
        set_zone(app, "America/New_York")  # 19:30 on 1 July there
        assert numbers.new_order_no().startswith("K260701")
