"""Plugins as staff and plugin authors meet them: discovery, the admin page, the CLI, isolation.

Tests that need plugins of their own write them to a temporary plugins/ folder and only then
build the shop (`shop_with`), because discovery runs when the app is created.
"""

import json
import logging
import secrets
import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest
from conftest import login, submit
from selling import card_product, customer

from shop import create_app, plugins
from shop.catalog.models import Product
from shop.db import db
from shop.inventory import service as inventory
from shop.inventory.models import CardKey
from shop.orders import service as orders
from shop.plugins import discovery
from shop.plugins.models import PluginState

HELLO_MARK = 'class="plugin-hello"'
HELLO_DEFAULT = "Hello from the hello plugin!"


def write_plugin(root, name, code, **meta):
    """A plugin folder as an author writes one: plugin.json and __init__.py."""
    folder = root / name
    folder.mkdir()
    (folder / "plugin.json").write_text(json.dumps({"name": name, "version": "0.1", **meta}))
    (folder / "__init__.py").write_text(textwrap.dedent(code))
    return folder


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    path = tmp_path / "plugins"
    path.mkdir()
    monkeypatch.setattr(discovery, "PLUGIN_DIR", path)
    return path


@pytest.fixture
def shop_with(plugin_dir, db_url, request):
    """Build the shop (and its owner) on demand, after the test has written its plugins to
    plugin_dir; requesting `app` or `owner` directly would build it before they exist."""
    return lambda: (request.getfixturevalue("app"), request.getfixturevalue("owner"))


def owner_client(app, owner):
    client = app.test_client()
    assert login(client, *owner).status_code == 302
    return client


def toggle(client, name, enabled):
    data = {"enabled": "1" if enabled else "0"}
    return submit(client, f"/admin/plugins/{name}/toggle", data, form_url="/admin/plugins")


def save_settings(client, name, values):
    data = {f"setting:{key}": value for key, value in values.items()}
    return submit(client, f"/admin/plugins/{name}/settings", data, form_url="/admin/plugins")


def page(client, url="/"):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


# the bundled example ---------------------------------------------------------------------


def test_discovery_finds_hello_with_its_metadata():
    found = {info.name: info for info in discovery.discover()}
    hello = found["hello"]
    assert hello.source == "folder" and hello.default_enabled is False
    assert [(s.key, s.type, s.default) for s in hello.settings] == [
        ("greeting", "text", HELLO_DEFAULT)
    ]


def test_hello_is_off_until_the_owner_enables_it_in_the_admin(app, owner):
    client = owner_client(app, owner)
    assert HELLO_MARK not in page(client)
    assert 'action="/admin/plugins/hello/toggle"' in page(client, "/admin/plugins")

    response = toggle(client, "hello", True)
    assert response.status_code == 303
    home = page(client)  # the very next request, same process: no restart
    assert HELLO_MARK in home and HELLO_DEFAULT in home

    assert toggle(client, "hello", False).status_code == 303
    assert HELLO_MARK not in page(client)


def test_hello_greeting_follows_its_setting_and_is_escaped(app, owner):
    client = owner_client(app, owner)
    toggle(client, "hello", True)

    assert save_settings(client, "hello", {"greeting": "Welcome, traveller"}).status_code == 303
    assert "Welcome, traveller" in page(client)
    assert 'value="Welcome, traveller"' in page(client, "/admin/plugins")

    save_settings(client, "hello", {"greeting": "<b>bold</b>"})
    home = page(client)
    assert "&lt;b&gt;bold&lt;/b&gt;" in home and "<b>bold</b>" not in home


def test_hello_logs_event_names_but_not_payload_values(app, caplog):
    with app.app_context():
        plugins.registry().set_enabled("hello", True)
        with caplog.at_level(logging.INFO):
            plugins.notify("user.registered", to="alice@example.com")
    assert "user.registered (to)" in caplog.text
    assert "alice@example.com" not in caplog.text


# settings and enabling rules -------------------------------------------------------------

NOOP = """
    from shop.plugins import hookimpl

    @hookimpl
    def notify(event):
        pass
"""


def test_secret_setting_is_stored_encrypted_and_never_shown(shop_with, plugin_dir):
    write_plugin(
        plugin_dir,
        "vault",
        NOOP,
        settings=[{"key": "token", "label": "API token", "type": "secret"}],
    )
    app, owner = shop_with()
    client = owner_client(app, owner)
    token = "sk-live-0123456789abcdef"

    assert save_settings(client, "vault", {"token": token}).status_code == 303
    with app.app_context():
        raw = PluginState.get(PluginState.name == "vault").settings
        assert token not in raw and json.loads(raw)["token"]
        assert plugins.registry().settings("vault") == {"token": token}
    assert token not in page(client, "/admin/plugins")

    save_settings(client, "vault", {"token": ""})  # a blank secret field keeps the old one
    with app.app_context():
        assert plugins.registry().settings("vault") == {"token": token}


NEEDY = """
    from shop.plugins import hookimpl

    def check_can_enable(settings):
        if not settings["api_key"]:
            return "set the API key first"
        return None

    @hookimpl
    def notify(event):
        pass
"""


def test_check_can_enable_refusal_keeps_the_plugin_off_and_says_why(shop_with, plugin_dir):
    write_plugin(
        plugin_dir,
        "needy",
        NEEDY,
        settings=[{"key": "api_key", "label": "API key", "type": "text"}],
    )
    app, owner = shop_with()
    client = owner_client(app, owner)

    response = toggle(client, "needy", True)
    assert response.status_code == 400
    assert "needy cannot be enabled: set the API key first" in response.get_data(as_text=True)
    with app.app_context():
        assert not plugins.registry().is_enabled("needy")
        assert not PluginState.select().where(PluginState.name == "needy").exists()

    save_settings(client, "needy", {"api_key": "k-1"})
    assert toggle(client, "needy", True).status_code == 303
    with app.app_context():
        assert plugins.registry().is_enabled("needy")


# isolation and discovery -----------------------------------------------------------------

RECORDER = """
    from shop.plugins import hookimpl

    @hookimpl
    def notify(event, payload):
        payload["calls"].append(__name__)
"""

RAISER = """
    from shop.plugins import hookimpl

    @hookimpl
    def notify(event, payload):
        payload["calls"].append(__name__)
        raise RuntimeError("mail server down")
"""


def test_a_raising_notify_is_logged_and_the_next_plugin_still_runs(shop_with, plugin_dir, caplog):
    # pluggy calls the last registered first; folders register in name order, so "zz_raiser"
    # runs before "aa_recorder" and its failure must not stop it.
    write_plugin(plugin_dir, "aa_recorder", RECORDER, default_enabled=True)
    write_plugin(plugin_dir, "zz_raiser", RAISER, default_enabled=True)
    app, _ = shop_with()
    calls = []
    with app.app_context():
        with db.atomic():
            plugins.notify("order.paid", calls=calls)
            assert calls == []  # nothing is told before the transaction commits
        assert calls == ["kashop_plugins.zz_raiser", "kashop_plugins.aa_recorder"]
    assert "plugin zz_raiser failed in hook notify" in caplog.text
    assert "mail server down" in caplog.text


DELIVERER = """
    from shop.plugins import hookimpl

    @hookimpl
    def deliver(order, product):
        order.append(__name__)
        return "delivered by " + __name__
"""


def test_deliver_stops_at_the_first_plugin_that_answers(shop_with, plugin_dir):
    write_plugin(plugin_dir, "aa_courier", DELIVERER, default_enabled=True)
    write_plugin(plugin_dir, "zz_courier", DELIVERER, default_enabled=True)
    app, _ = shop_with()
    calls = []
    with app.app_context():
        results = plugins.fire("deliver", order=calls, product=None)
    assert results == ["delivered by kashop_plugins.zz_courier"]
    assert calls == ["kashop_plugins.zz_courier"]


def test_broken_plugins_are_skipped_and_the_shop_still_starts(shop_with, plugin_dir, caplog):
    write_plugin(plugin_dir, "syntax", "def oops(:\n", default_enabled=True)
    bad_args = RECORDER.replace("(event, payload)", "(event, payload, extra)")
    write_plugin(plugin_dir, "bad_args", bad_args, default_enabled=True)
    write_plugin(plugin_dir, "fine", NOOP, default_enabled=True)
    app, owner = shop_with()

    assert sorted(plugins.registry().plugins) == ["fine"]
    assert "plugin folder" in caplog.text and "syntax failed to load" in caplog.text
    assert "plugin bad_args has an invalid hook implementation" in caplog.text
    client = owner_client(app, owner)
    assert client.get("/").status_code == 200


def test_misspelt_hook_is_reported(shop_with, plugin_dir, caplog):
    write_plugin(plugin_dir, "typo", RECORDER.replace("def notify", "def notfy"))
    shop_with()
    assert "plugin typo implements unknown hook notfy" in caplog.text


PACKAGED = """
    from shop.plugins import hookimpl

    PLUGIN = {"name": "packaged", "version": "2.0", "default_enabled": True}

    @hookimpl
    def template_slot(name):
        return "<i>from a package</i>" if name == "footer" else None
"""


def test_installed_package_with_entry_point_is_discovered(shop_with, tmp_path, monkeypatch):
    (tmp_path / "kashop_packaged_demo.py").write_text(textwrap.dedent(PACKAGED))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "kashop_packaged_demo", raising=False)
    point = EntryPoint("packaged", "kashop_packaged_demo", "kashop.plugins")
    monkeypatch.setattr(
        discovery, "entry_points", lambda group: [point] if group == "kashop.plugins" else []
    )
    app, owner = shop_with()

    info = plugins.registry().info("packaged")
    assert info.version == "2.0" and info.source == "package kashop_packaged_demo"
    home = page(owner_client(app, owner))
    assert "&lt;i&gt;from a package&lt;/i&gt;" in home  # plain strings are escaped


def test_safe_mode_loads_no_plugin_and_the_admin_says_so(app, owner, monkeypatch):
    with app.app_context():
        plugins.registry().set_enabled("hello", True)
    assert HELLO_MARK in page(owner_client(app, owner))

    monkeypatch.setenv("SHOP_SAFE_MODE", "1")
    safe = create_app({"TESTING": True})
    assert plugins.registry().plugins == {}
    client = owner_client(safe, owner)
    assert HELLO_MARK not in page(client)
    admin = page(client, "/admin/plugins")
    assert "Safe mode: no plugin is loaded" in admin
    assert 'action="/admin/plugins/hello/toggle"' not in admin


# refusals --------------------------------------------------------------------------------


def test_unknown_plugin_is_404_in_the_admin(app, owner):
    client = owner_client(app, owner)
    assert toggle(client, "nope", True).status_code == 404
    assert save_settings(client, "nope", {"x": "1"}).status_code == 404
    with app.app_context():
        assert not PluginState.select().exists()


def test_cli_enables_hello_and_refuses_an_unknown_plugin(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["shop", "plugins", "enable", "nope", "--json"])
    assert result.exit_code == 2
    error = json.loads(result.output)["error"]
    assert error["code"] == "bad_input" and "unknown plugin 'nope'" in error["message"]

    result = runner.invoke(args=["shop", "plugins", "enable", "hello", "--json"])
    assert result.exit_code == 0 and json.loads(result.output) == {
        "name": "hello",
        "enabled": True,
    }
    listed = runner.invoke(args=["shop", "plugins", "list", "--json"])
    [hello] = [p for p in json.loads(listed.output)["plugins"] if p["name"] == "hello"]
    assert hello["enabled"] is True


def test_customers_cannot_see_or_toggle_plugins(app, owner):
    client = app.test_client()
    password = "carol-pass-1"
    data = {"email": "carol@example.com", "password": password, "confirm": password}
    assert submit(client, "/register", data).status_code == 302

    assert client.get("/admin/plugins").status_code == 403
    response = submit(client, "/admin/plugins/hello/toggle", {"enabled": "1"}, form_url="/")
    assert response.status_code == 403
    with app.app_context():
        assert not plugins.registry().is_enabled("hello")


# the product.low_stock notice --------------------------------------------------------------

STOCK_WATCHER = """
    from shop.plugins import hookimpl

    events = []

    @hookimpl
    def notify(event, payload):
        if event == "product.low_stock":
            events.append(payload)
"""


@pytest.fixture
def low_stock(shop_with, plugin_dir):
    """Inside an app with a plugin recording every product.low_stock notice: the notices."""
    write_plugin(plugin_dir, "stockwatch", STOCK_WATCHER, default_enabled=True)
    app, _ = shop_with()
    with app.app_context():
        yield plugins.registry().info("stockwatch").module.events


def notice(product, stock):
    return {"product_id": product.id, "name": product.name, "stock": stock}


def api_sale(buyer, product, quantity=1):
    order, _ = orders.place_paid_order(
        buyer, product.id, quantity, None, idem_key=secrets.token_hex(8), request_hash="h"
    )
    assert order.status == "delivered"


def test_low_stock_is_told_once_when_sales_cross_the_threshold(low_stock):
    product = card_product(keys=6, low_stock_threshold=3)
    buyer = customer(wallet=100_000)
    api_sale(buyer, product)  # 5 left
    assert low_stock == []
    api_sale(buyer, product, quantity=3)  # 2 left: crossed on the way down, by three at once
    assert low_stock == [notice(product, 2)]
    api_sale(buyer, product)  # 1 left: below already, nothing new
    assert low_stock == [notice(product, 2)]


def test_low_stock_is_told_when_a_reservation_crosses_the_threshold(low_stock):
    product = card_product(keys=3, low_stock_threshold=2)
    orders.place_order(product.id, 1, contact="guest@example.com", query_password="pw12")
    assert low_stock == [notice(product, 2)]


def test_low_stock_is_told_once_when_voids_cross_the_threshold(low_stock):
    product = card_product(keys=4, low_stock_threshold=2)
    keys = [k.id for k in CardKey.select().where(CardKey.product == product.id)]
    inventory.void_key(keys[0])  # 3 left
    assert low_stock == []
    inventory.void_key(keys[1])  # 2 left: at the threshold
    assert low_stock == [notice(product, 2)]
    inventory.void_key(keys[2])  # 1 left: below already
    assert low_stock == [notice(product, 2)]
    assert Product.get_by_id(product.id).stock == 1


def test_low_stock_is_told_again_after_a_restock_and_never_without_a_threshold(low_stock):
    product = card_product(keys=2, low_stock_threshold=1)
    keys = [k.id for k in CardKey.select().where(CardKey.product == product.id)]
    inventory.void_key(keys[0])
    inventory.import_keys(product, ["NEW-KEY-0001", "NEW-KEY-0002"])  # 3 left, above again
    orders.place_order(product.id, 2, contact="guest@example.com", query_password="pw12")
    assert low_stock == [notice(product, 1), notice(product, 1)]

    unwatched = card_product(keys=2)  # threshold 0: staff asked for no notice
    inventory.void_key(CardKey.get(CardKey.product == unwatched.id).id)
    orders.place_order(unwatched.id, 1, contact="guest@example.com", query_password="pw12")
    assert len(low_stock) == 2
