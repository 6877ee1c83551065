"""Distributor levels: the member's price in the catalog, at checkout and in the API; fixed
prices; automatic upgrades by spend and by referrals; staff setting a level (CLI and admin),
audited; and every refusal leaving nothing written."""

import json

import pytest
from conftest import login, submit
from selling import card_product, customer
from test_api import call, new_buyer

from shop import crypto, invariants
from shop.accounts import service as accounts
from shop.accounts.models import User
from shop.audit.models import AuditLog
from shop.catalog.pricing import unit_price
from shop.levels import service as levels
from shop.levels.models import Level, LevelPrice
from shop.orders import service as orders
from shop.orders.models import Order


@pytest.fixture(autouse=True)
def keyring():
    crypto.configure(b"k" * 32)


def text(response) -> str:
    return response.get_data(as_text=True)


def healthy():
    assert {k: v for k, v in invariants.run_all().items() if v} == {}


def level(name="agent", discount_bps=1000, **rules) -> Level:
    raw = {"name": name, "discount_bps": str(discount_bps), **{k: str(v) for k, v in rules.items()}}
    return levels.create_level(raw)


def on_level(user: User, lv: Level | None) -> User:
    levels.set_user_level(user, lv, actor=None)
    return User.get_by_id(user.id)


def level_actions(user_id: int) -> list[dict]:
    rows = AuditLog.select().where(
        (AuditLog.action == "user.level") & (AuditLog.target == f"user:{user_id}")
    )
    return [{"actor": r.actor_id, **json.loads(r.detail)} for r in rows.order_by(AuditLog.id)]


# the member's price --------------------------------------------------------------------------


def test_a_member_pays_the_discounted_tier_price_and_others_the_normal_one(database):
    product = card_product(price=1000, cost=600, tiers_json="[[10, 950]]")
    member = on_level(customer(), level(discount_bps=1250))  # 12.5 %
    other = customer("other@example.com")
    assert unit_price(product, 1, member) == 875  # 1000 × 8750 // 10000
    assert unit_price(product, 10, member) == 831  # 950 × 0.875 = 831.25, rounded down
    assert unit_price(product, 1, other) == 1000
    assert unit_price(product, 1, None) == 1000


def test_a_fixed_price_beats_the_discount_and_a_lower_tier_beats_the_fixed_price(database):
    product = card_product(price=1000, cost=500, tiers_json="[[10, 700]]")
    agent = level(discount_bps=1000)
    member = on_level(customer(), agent)
    assert levels.set_fixed_prices(agent, {product.id: "8.00"}) == []
    assert unit_price(product, 1, member) == 800  # not 900
    assert unit_price(product, 10, member) == 700  # the tier is lower still
    levels.set_fixed_prices(agent, {product.id: ""})
    assert unit_price(product, 1, member) == 900
    assert LevelPrice.select().count() == 0


def test_a_discount_stops_at_the_cost_but_a_fixed_price_may_go_below_it(database):
    product = card_product(price=1000, cost=950)
    cheap = card_product(price=500, cost=600)  # already sold below cost by staff's choice
    agent = level(discount_bps=2000)
    member = on_level(customer(), agent)
    assert unit_price(product, 1, member) == 950  # 800 would lose money on every sale
    assert unit_price(cheap, 1, member) == 500  # never above the normal price
    below = levels.set_fixed_prices(agent, {product.id: "9.00"})
    assert [p.id for p in below] == [product.id]  # allowed, and staff are told
    assert unit_price(product, 1, member) == 900


def test_free_stays_free_and_a_fixed_price_of_zero_needs_a_free_product(database):
    free = card_product(price=0, cost=0, free=True)
    paid = card_product(price=1000)
    agent = level(discount_bps=10_000)
    member = on_level(customer(), agent)
    assert unit_price(free, 1, member) == 0
    assert unit_price(paid, 1, member) == paid.cost  # a 100 % discount still stops at cost
    assert levels.set_fixed_prices(agent, {free.id: "0"}) == []
    with pytest.raises(levels.LevelError, match="above zero"):
        levels.set_fixed_prices(agent, {paid.id: "0", free.id: ""})
    with pytest.raises(levels.LevelError, match="No product"):
        levels.set_fixed_prices(agent, {999: "1.00"})
    assert levels.fixed_prices(agent) == {free.id: 0}


@pytest.mark.pg
def test_checkout_charges_the_level_price(database):
    product = card_product(price=1000, cost=500)
    agent = level(discount_bps=1500)
    member = on_level(customer(wallet=5000), agent)
    order = orders.place_order(product.id, 2, user=member)
    assert (order.unit_price, order.amount) == (850, 1700)
    orders.pay_with_wallet(order, actor=member)
    orders.complete(Order.get_by_id(order.id))
    healthy()


# storefront and API --------------------------------------------------------------------------


@pytest.fixture
def shop(app, owner):
    with app.app_context():
        product = card_product(keys=3, price=1000, cost=500)
        agent = level(discount_bps=2000)
        member = on_level(customer(wallet=5000), agent)
        return {"product": product.id, "member": member.id, "level": agent.id}


def test_storefront_shows_and_charges_the_viewers_level_price(client, app, shop):
    product = shop["product"]
    assert "¥10.00" in text(client.get(f"/p/{product}"))
    assert "¥10.00" in text(client.get("/"))
    login(client, "buyer@example.com", "buyer-pass-1")
    page = text(client.get(f"/p/{product}"))
    assert "¥8.00" in page and "¥10.00" not in page
    assert "¥8.00" in text(client.get("/"))
    response = submit(client, f"/p/{product}/buy", {"quantity": "1"}, form_url=f"/p/{product}")
    assert response.status_code == 302
    with app.app_context():
        order = Order.get(Order.user == shop["member"])
        assert (order.unit_price, order.amount) == (800, 800)


def test_api_catalog_product_and_order_use_the_keys_users_level(client, app, shop):
    with app.app_context():
        member = new_buyer("member@example.com", wallet=5000)
        on_level(member.user, Level.get_by_id(shop["level"]))
        plain = new_buyer("plain@example.com", wallet=5000)
    product = shop["product"]
    catalog = call(client, member, "GET", "/api/v1/catalog").get_json()["products"]
    assert [p["price"] for p in catalog if p["id"] == product] == [800]
    assert call(client, member, "GET", f"/api/v1/products/{product}").get_json()["price"] == 800
    assert call(client, plain, "GET", f"/api/v1/products/{product}").get_json()["price"] == 1000
    payload = {"product_id": product, "quantity": 2}
    placed = call(client, member, "POST", "/api/v1/orders", payload, idem="lv-1")
    assert placed.status_code == 201 and placed.get_json()["amount"] == 1600
    balance = call(client, member, "GET", "/api/v1/balance").get_json()
    assert balance["wallet"] == 5000 - 1600


# automatic upgrades --------------------------------------------------------------------------


def buy_and_complete(user, product, quantity=1):
    order = orders.place_order(product.id, quantity, user=user)
    orders.pay_with_wallet(order, actor=user)
    return orders.complete(Order.get_by_id(order.id))


@pytest.mark.pg
def test_completing_orders_upgrades_by_cumulative_spend_never_down(database):
    product = card_product(keys=10, price=1000, cost=500)
    member = level("member", 0, min_spend="10.00", auto="1")
    agent = level("agent", 500, min_spend="30.00", auto="1")
    senior = level("senior", 2000)  # staff only
    buyer = customer(wallet=100_000)
    pending = orders.place_order(product.id, 5, user=buyer)  # unpaid: does not count
    assert User.get_by_id(buyer.id).level_id is None
    buy_and_complete(buyer, product)
    assert User.get_by_id(buyer.id).level_id == member.id
    buy_and_complete(buyer, product)  # 20.00: still a member
    assert User.get_by_id(buyer.id).level_id == member.id
    buy_and_complete(buyer, product)  # 30.00
    assert User.get_by_id(buyer.id).level_id == agent.id
    assert buy_and_complete(User.get_by_id(buyer.id), product).amount == 950
    assert [(a["level"], a["by"], a["actor"]) for a in level_actions(buyer.id)] == [
        (member.id, "automatic", None),
        (agent.id, "automatic", None),
    ]
    on_level(buyer, senior)
    buy_and_complete(User.get_by_id(buyer.id), product)
    assert User.get_by_id(buyer.id).level_id == senior.id  # never moved down
    orders.cancel(pending)
    healthy()


@pytest.mark.pg
def test_referrals_upgrade_through_the_periodic_job(database):
    rules = level("agent", 500, min_referrals="2", auto="1")
    both = level("senior", 1000, min_referrals="2", min_spend="100.00", auto="1")
    referrer = customer("ref@example.com")
    accounts.register("a@example.com", "buyer-pass-1", referrer_code=referrer.invite_code)
    assert levels.upgrade_all() == 0
    accounts.register("b@example.com", "buyer-pass-1", referrer_code=referrer.invite_code)
    assert levels.upgrade_all() == 1
    assert User.get_by_id(referrer.id).level_id == rules.id  # not senior: no spend yet
    assert levels.upgrade_all() == 0
    assert levels.progress(referrer.id) == (0, 2)
    assert both.rank > rules.rank
    assert [(lv.name, lv.members) for lv in levels.all_levels()] == [("agent", 1), ("senior", 0)]


def test_an_automatic_level_needs_a_rule_and_a_manual_one_is_never_reached(database):
    with pytest.raises(levels.LevelError, match="automatic level needs"):
        level("member", 0, auto="1")
    manual = level("vip", 0, min_spend="0")  # rules but not automatic
    buyer = customer(wallet=5000)
    buy_and_complete(buyer, card_product())
    assert levels.upgrade_all() == 0 and User.get_by_id(buyer.id).level_id is None
    assert manual.auto is False
    assert Level.select().count() == 1


# CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args):
        result = runner.invoke(args=["shop", *args, "--json"])
        return result.exit_code, json.loads(result.stdout)

    return run


def test_cli_adds_lists_and_sets_levels_with_an_audit_record(app, cli):
    code, out = cli("levels", "add", "--name", "agent", "--discount-bps", "500")
    assert code == 0 and set(out) == {"id"}
    agent = out["id"]
    code, out = cli(
        "levels", "add", "--name", "senior", "--discount-bps", "1500",
        "--min-spend", "100.00", "--min-referrals", "3",
    )  # fmt: skip
    assert code == 0
    code, listed = cli("levels", "list")
    assert code == 0
    assert [(lv["name"], lv["rank"], lv["auto"], lv["min_spend"]) for lv in listed["levels"]] == [
        ("agent", 1, False, None),
        ("senior", 2, True, 10_000),
    ]
    with app.app_context():
        user = customer()
    assert cli("user", "set-level", str(user.id), "agent") == (
        0,
        {"user_id": user.id, "level": "agent"},
    )
    assert cli("user", "set-level", str(user.id), str(out["id"]))[1]["level"] == "senior"
    assert cli("user", "set-level", str(user.id), "none") == (
        0,
        {"user_id": user.id, "level": None},
    )
    with app.app_context():
        assert User.get_by_id(user.id).level_id is None
        assert [(a["level"], a["previous"], a["by"]) for a in level_actions(user.id)] == [
            (agent, None, "staff"),
            (out["id"], agent, "staff"),
            (None, out["id"], "staff"),
        ]
    assert cli("levels", "list")[1]["levels"][0]["members"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--discount-bps", "500"], "needs a name"),
        (["--name", "x", "--discount-bps", "10001"], "from 0 to 10000"),
        (["--name", "x", "--discount-bps", "-5"], "from 0 to 10000"),
        (["--name", "x", "--discount-bps", "5.5"], "from 0 to 10000"),
        (["--name", "x", "--min-spend", "1.234"], "amount like 100.00"),
        (["--name", "x", "--min-referrals", "many"], "whole number"),
        (["--name", "12"], "would read as an id"),
        (["--name", "None"], "would read as an id"),
        (["--name", "agent"], "already a level named agent"),
        (["--name", "x", "--rank", "1"], "rank 1"),
    ],
)
def test_cli_bad_level_input_is_exit_2_and_adds_nothing(app, cli, args, message):
    assert cli("levels", "add", "--name", "agent")[0] == 0
    code, out = cli("levels", "add", *args)
    assert code == 2 and message in out["error"]["message"], out
    with app.app_context():
        assert Level.select().count() == 1


def test_cli_set_level_refuses_unknown_users_and_levels(app, cli):
    with app.app_context():
        user = customer()
    assert cli("user", "set-level", "999", "none")[0] == 2
    code, out = cli("user", "set-level", str(user.id), "ghost")
    assert code == 2 and "No level 'ghost'" in out["error"]["message"]
    with app.app_context():
        assert not AuditLog.select().where(AuditLog.action == "user.level").exists()


def test_cli_levels_upgrade_moves_users_up(app, cli):
    assert cli("levels", "add", "--name", "member", "--min-referrals", "1")[0] == 0
    with app.app_context():
        referrer = customer("ref@example.com")
        accounts.register("a@example.com", "buyer-pass-1", referrer_code=referrer.invite_code)
    assert cli("levels", "upgrade") == (0, {"upgraded": 1})
    assert cli("levels", "upgrade") == (0, {"upgraded": 0})


# admin ---------------------------------------------------------------------------------------


@pytest.fixture
def staff(client, owner):
    login(client, *owner)
    return client


def test_staff_create_edit_and_price_a_level(staff, app):
    form = {"name": "agent", "discount_bps": "800", "min_spend": "50.00", "auto": "1"}
    response = submit(staff, "/admin/levels", form)
    assert response.status_code == 303
    with app.app_context():
        agent = Level.get(Level.name == "agent")
        assert (agent.discount_bps, agent.min_spend, agent.auto, agent.rank) == (800, 5000, True, 1)
        product = card_product(price=1000, cost=700)
        other = card_product(price=2000, cost=100)
    page = text(staff.get(f"/admin/levels/{agent.id}"))
    assert 'value="50.00"' in page and f'name="price-{product.id}"' in page

    edit = {**form, "name": "agent+", "discount_bps": "900", "rank": "5"}
    assert submit(staff, f"/admin/levels/{agent.id}", edit).status_code == 303
    prices = {f"price-{product.id}": "6.50", f"price-{other.id}": "15.00"}
    response = submit(
        staff, f"/admin/levels/{agent.id}/prices", prices, form_url=f"/admin/levels/{agent.id}"
    )
    assert response.status_code == 303
    page = text(staff.get(response.headers["Location"]))
    assert "below its cost 7.00" in page and "below cost" in page
    assert 'value="6.50"' in page and 'value="15.00"' in page
    with app.app_context():
        assert (Level.get_by_id(agent.id).name, Level.get_by_id(agent.id).rank) == ("agent+", 5)
        assert levels.fixed_prices(agent) == {product.id: 650, other.id: 1500}
        done = [a.action for a in AuditLog.select().where(AuditLog.target == f"level:{agent.id}")]
        assert done == ["level.create", "level.update", "level.prices"]


def test_admin_refusals_show_the_reason_and_change_nothing(staff, app):
    assert submit(staff, "/admin/levels", {"name": "agent", "discount_bps": "0"}).status_code == 303
    response = submit(staff, "/admin/levels", {"name": "agent", "discount_bps": "0"})
    assert response.status_code == 400 and "already a level named agent" in text(response)
    response = submit(staff, "/admin/levels", {"name": "x", "discount_bps": "abc"})
    assert response.status_code == 400 and "basis points" in text(response)
    with app.app_context():
        agent = Level.get(Level.name == "agent")
        product = card_product()
    url = f"/admin/levels/{agent.id}"
    response = submit(staff, f"{url}/prices", {f"price-{product.id}": "-1"}, form_url=url)
    assert response.status_code == 400 and "must be an amount like 9.50" in text(response)
    with app.app_context():
        assert Level.select().count() == 1 and LevelPrice.select().count() == 0


def test_staff_set_a_users_level_on_the_admin_and_it_is_audited(staff, app, owner):
    with app.app_context():
        agent = level()
        user = customer()
        owner_id = User.get(User.role == "owner").id
    listing = text(staff.get("/admin/users"))
    assert f"/admin/users/{user.id}/level" in listing
    url = f"/admin/users/{user.id}/level"
    assert "b***@example.com" in text(staff.get(url))  # masked
    assert submit(staff, url, {"level": str(agent.id)}).status_code == 303
    assert ">agent</a>" in text(staff.get("/admin/users"))
    response = submit(staff, url, {"level": "404"})
    assert response.status_code == 400 and "No level" in text(response)
    with app.app_context():
        assert User.get_by_id(user.id).level_id == agent.id
        assert [(a["actor"], a["level"]) for a in level_actions(user.id)] == [(owner_id, agent.id)]


def test_level_pages_are_for_staff_only(client, app, owner):
    with app.app_context():
        agent = level()
        user = customer()
    login(client, "buyer@example.com", "buyer-pass-1")
    for url in ("/admin/levels", f"/admin/levels/{agent.id}", f"/admin/users/{user.id}/level"):
        assert client.get(url).status_code == 403
    response = submit(client, "/admin/levels", {"name": "mine"}, form_url="/")
    assert response.status_code == 403
    with app.app_context():
        assert Level.select().count() == 1
