"""The shop as people meet it, in a real headless Chromium (Debian's `chromium` package).

Three walks, each through a real server of its own (`python app.py`, gunicorn, a fresh instance
folder), so they can run side by side under `pytest -n`:

- accounts and themes: first visit → setup → admin → sign out → register → sign out → sign in
  as the customer → account page (masked email) → sign in as the owner → Admin → Users → the
  customer's page → make them staff → Themes →
  switch theme → the storefront wears the new theme, on a desktop and on a phone;
- a guest's purchase: the owner (made with `shop init`) adds a category and card products
  with their keys in the admin and turns the sandbox gateway on → a guest with no cookies
  browses home → product page (also on a phone) → buys 2 keys with the sandbox gateway → the
  order page shows exactly the keys imported, under the sandbox banner → keys.txt downloads
  with the same keys → in another fresh browser the order is found again at /lookup (a wrong
  password gets the generic refusal), and the product shows sold out → the owner sees the
  order, refunds it through the sandbox gateway, the guest reads the reason and that the
  money went back the way it came, and `shop audit` passes;
- a referral: an invite link → register → buy with the empty wallet, which leaves the order
  waiting on its page with the reason and a top-up link → pay that order with the sandbox
  gateway → take a free gift with one button → the referrer signs in and sees the pending
  commission and the invite QR code on the distributor page.

Along the way every page must log no console error (a CSP violation is one) and ask no host
but the shop itself for anything. Screenshots of each step land in test-artifacts/e2e/<walk>/;
the guest's view of the stocked storefront is also copied to docs/screenshot.png, which
README.md shows (fixed names and prices, nothing time-dependent in view, so it only changes
when the look does).

Skipped when Chromium is not installed, unless SHOP_E2E=1 (as .ci/run sets), which turns the
skip into a failure.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from shop.plugins.manager import CACHE_SECONDS as PLUGINS_CACHE_SECONDS
from shop.settings.service import CACHE_SECONDS as SETTINGS_CACHE_SECONDS

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SHOP_E2E_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"
REQUIRED = os.environ.get("SHOP_E2E") == "1"
# Without the background-networking flags Chromium itself tries to reach Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "locale": "en-US"}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-US",
}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# How long another gunicorn worker may still answer with what it read before a change: its
# settings (shop name, theme) are up to SETTINGS_CACHE_SECONDS old, its plugin states up to
# PLUGINS_CACHE_SECONDS, and a guest's first, cookieless request may get a page cached for up
# to 2 s more (shop/storefront/pagecache.py).
PAGE_CACHE_SECONDS = 2.0

SHOP_NAME = "Moon Cards"
OWNER = ("owner@example.com", "owner-pass-1")
CUSTOMER = ("carol@example.com", "carol-pass-1")
GUEST = ("dave@example.com", "moon-query-7")
# The catalog the owner types in: fixed names, prices and keys, so the storefront screenshot
# in README.md stays the same from run to run.
CATEGORIES = ["Game cards", "Software"]
PRODUCTS = [
    {
        "name": "Moon Card ¥50",
        "category": "Game cards",
        "price": "50.00",
        "description": "<p>A ¥50 top-up code for <strong>Moon</strong> games.</p>",
        "keys": ["MOON-50-7QXH-K2LA", "MOON-50-M4RT-9ZDE"],
    },
    {
        "name": "Star Pass · 30 days",
        "category": "Game cards",
        "price": "30.00",
        "description": "<p>Thirty days of Star Pass.</p>",
        "keys": ["STAR-30-AAAA-0001", "STAR-30-AAAA-0002", "STAR-30-AAAA-0003"],
    },
    {
        "name": "Inkpad Pro licence",
        "category": "Software",
        "price": "88.00",
        "description": "<p>A lifetime licence key for Inkpad Pro.</p>",
        "keys": ["INKPAD-PRO-5J8W-2Q7C"],
    },
]
BOUGHT = PRODUCTS[0]  # the guest buys both of its keys


def _skip_or_fail(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (SHOP_E2E=1 requires the browser test)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sync_playwright():
    if not Path(CHROMIUM).is_file():
        _skip_or_fail(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed: pip install -r requirements.txt")
    return sync_playwright


@pytest.fixture
def browser(sync_playwright):
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# the server --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer {url} in {timeout:.0f}s:\n{log_path.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its gunicorn workers (it leads a process group of its own)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@pytest.fixture
def shop_env(tmp_path) -> dict:
    """The environment of the server and of the CLI run against it: a fresh instance folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    env["SHOP_INSTANCE"] = str(tmp_path / "instance")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def shop_cli(env: dict, *args: str) -> dict:
    """`flask --app app shop ARGS --json` against the test's instance; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "shop", *args, "--json"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"shop {' '.join(args)}: {done.returncode}\n{done.stderr}"
    return json.loads(done.stdout)


@contextlib.contextmanager
def _serving(env: dict, tmp_path: Path):
    """`python app.py` on a free port; yields its base URL."""
    port = _free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), "--workers", "2", "--no-worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base + "/setup", proc, log_path)
        yield base
    finally:
        _stop(proc)
        print(f"--- server log ({log_path}) ---\n{log_path.read_text(errors='replace')[-4000:]}")


@pytest.fixture
def server(shop_env, tmp_path):
    """A server on a fresh instance that nobody has set up yet."""
    with _serving(shop_env, tmp_path) as base:
        yield base


@pytest.fixture
def owned_server(shop_env, tmp_path):
    """A server on a fresh instance set up from the command line: an owner, an empty shop."""
    answer = shop_cli(
        shop_env,
        "init",
        "--admin-email",
        OWNER[0],
        "--admin-password",
        OWNER[1],
        "--shop-name",
        SHOP_NAME,
        "--language",
        "en",
    )
    assert answer["created"] is True, answer
    with _serving(shop_env, tmp_path) as base:
        yield base


# the browser -------------------------------------------------------------------------------


class Watch:
    """Collects what a page must never do: log an error, or fetch from another host."""

    def __init__(self):
        self.console_errors: list[str] = []
        self.foreign_requests: list[str] = []
        self.expected_statuses: list[int] = []

    def expect_status(self, status: int) -> None:
        """The next page will answer `status` on purpose (a refused form): Chromium logs
        that as a console error, which is then no fault."""
        self.expected_statuses.append(status)

    def attach(self, page) -> None:
        page.on("console", lambda msg: self._on_console(page, msg))
        page.on("pageerror", lambda exc: self.console_errors.append(f"page error: {exc}"))
        page.on("request", self._on_request)

    def _on_console(self, page, msg) -> None:
        for status in self.expected_statuses:
            if msg.text.startswith(
                f"Failed to load resource: the server responded with a status of {status} "
            ):
                self.expected_statuses.remove(status)
                return
        if msg.type == "error" or "Content Security Policy" in msg.text:
            where = msg.location.get("url") or ""
            self.console_errors.append(f"{msg.type} on {page.url}: {msg.text} ({where})")

    def _on_request(self, request) -> None:
        url = urlparse(request.url)
        if url.scheme in ("data", "blob", "about"):
            return
        if url.hostname not in LOCAL_HOSTS:
            self.foreign_requests.append(request.url)

    def assert_clean(self) -> None:
        assert self.console_errors == [], "console errors / CSP violations:\n" + "\n".join(
            self.console_errors
        )
        assert self.foreign_requests == [], "requests to other hosts:\n" + "\n".join(
            self.foreign_requests
        )


class Album:
    """The screenshots of one walk, numbered in order, in test-artifacts/e2e/<name>/."""

    def __init__(self, name: str):
        self.folder = ARTIFACTS / name
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        # Screenshots of the old layout, all in test-artifacts/e2e/ itself, would look current.
        for stale in ARTIFACTS.glob("*.*"):
            stale.unlink(missing_ok=True)
        self.names: list[str] = []

    def take(self, page, name: str) -> Path:
        path = self.folder / f"{len(self.names) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.names.append(path.name)
        return path

    def save_index(self) -> None:
        index = json.dumps({"screenshots": self.names}, indent=2) + "\n"
        (self.folder / "index.json").write_text(index)


class Visitor:
    """One person in a browser context of their own (own cookies), on one watched page."""

    def __init__(self, browser, base: str, watch: Watch, album: Album, options=DESKTOP):
        self.base = base
        self.watch = watch
        self.album = album
        self.context = browser.new_context(**options)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        watch.attach(self.page)

    @property
    def path(self) -> str:
        return urlparse(self.page.url).path

    def shot(self, name: str) -> Path:
        return self.album.take(self.page, name)

    def go(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"

    def go_until(self, path: str, ready, within: float) -> None:
        """Open `path` again until `ready(page)` holds or `within` seconds have passed (the
        caller then asserts it): for a change the other server processes see a little later."""
        deadline = time.monotonic() + within
        self.go(path)
        while not ready(self.page) and time.monotonic() < deadline:
            time.sleep(0.2)
            self.go(path)

    def submit(self, form: str = "main form[method=post]", status: int | None = None) -> None:
        """Submit the form by its button; the answer must be a success (or `status`)."""
        if status is not None and status >= 400:
            self.watch.expect_status(status)
        with self.page.expect_navigation() as navigation:
            self.page.locator(form).locator("button[type=submit]").first.click()
        response = navigation.value
        if status is None:
            assert response is not None and response.ok, self.page.content()
        else:
            assert response is not None and response.status == status, self.page.content()

    def text(self, selector: str = "main") -> str:
        return self.page.locator(selector).first.inner_text()

    def flash(self, kind: str = "success") -> str:
        flashes = self.page.locator(f".flash-{kind}")
        assert flashes.count() == 1, self.page.content()
        return flashes.first.inner_text()

    def sign_out(self) -> None:
        self.go("/")
        with self.page.expect_navigation():
            self.page.locator("form[action='/logout'] button").click()
        assert self.page.locator("a[href='/login']").first.is_visible()

    def sign_in(self, email: str, password: str) -> None:
        self.page.locator("a[href='/login']").first.click()
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", password)
        self.submit()
        assert self.page.locator("form[action='/logout']").count() == 1, self.page.content()

    def admin(self, label: str) -> None:
        """Open an admin page from the admin's side menu."""
        with self.page.expect_navigation():
            self.page.locator("nav.admin-nav a", has_text=label).first.click()

    def assert_no_sideways_scroll(self) -> None:
        overflow = self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{self.path} scrolls sideways by {overflow}px"

    def close(self) -> None:
        self.context.close()


def _themes() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "themes").glob("*/theme.json"))


def _theme_of(page) -> str | None:
    """The theme a storefront page wears, from its body's `theme-NAME` class."""
    classes = (page.locator("body").get_attribute("class") or "").split()
    names = [c.removeprefix("theme-") for c in classes if c.startswith("theme-")]
    return names[0] if len(names) == 1 else None


# the walks ---------------------------------------------------------------------------------


def test_setup_register_login_and_theme_switch(browser, server):
    album = Album("accounts-and-themes")
    watch = Watch()
    person = Visitor(browser, server, watch, album)
    page = person.page

    # First visit: no owner yet, so the setup page.
    person.go("/")
    assert person.path == "/setup"
    person.shot("setup")
    page.fill("input[name=shop_name]", SHOP_NAME)
    page.fill("input[name=email]", OWNER[0])
    page.fill("input[name=password]", OWNER[1])
    page.select_option("select[name=language]", "en")
    person.submit()
    assert person.path == "/admin/"
    person.go_until("/admin/", lambda p: SHOP_NAME in p.title(), SETTINGS_CACHE_SECONDS + 1)
    assert SHOP_NAME in page.title()
    person.shot("admin-dashboard")

    person.sign_out()
    person.shot("storefront-empty")
    assert page.locator("body").get_attribute("class").split().count("theme-default") == 1

    # A customer registers and is signed in at once.
    page.locator("a[href='/register']").first.click()
    page.fill("input[name=email]", CUSTOMER[0])
    page.fill("input[name=password]", CUSTOMER[1])
    page.fill("input[name=confirm]", CUSTOMER[1])
    person.submit()
    assert person.path == "/"
    assert page.locator("a[href='/account']").first.is_visible()
    assert page.locator("a[href='/admin/']").count() == 0  # a customer is not staff
    person.shot("registered")
    person.sign_out()

    # Signing in again: the account page shows the email masked, never in full.
    person.sign_in(*CUSTOMER)
    page.locator("a[href='/account']").first.click()
    assert "c***@example.com" in person.text()
    assert CUSTOMER[0] not in page.content()
    person.shot("account")
    person.sign_out()

    # The owner makes the customer staff, on the customer's page in the admin.
    person.sign_in(*OWNER)
    page.locator("a[href='/admin/']").first.click()
    person.admin("Users")
    customer_row = page.locator("main table tr", has_text="c***@example.com")
    with page.expect_navigation():
        customer_row.locator("a").first.click()
    page.select_option("select[name=role]", "staff")
    person.submit("form[action$='/role']")
    assert "is now staff" in person.flash("success")
    assert page.locator("select[name=role]").input_value() == "staff"
    person.shot("admin-user-made-staff")

    # The owner switches the theme in the admin, without a restart.
    page.locator("nav a[href='/admin/themes']").click()
    person.shot("admin-themes")
    others = [name for name in _themes() if name != "default"]
    new_theme = "ink" if "ink" in others else (others[0] if others else None)
    if new_theme is not None:
        person.submit(f"form:has(input[name=theme][value='{new_theme}'])")
        person.flash("success")
        person.shot("theme-switched")
        person.go_until("/", lambda p: _theme_of(p) == new_theme, SETTINGS_CACHE_SECONDS + 1)
        classes = page.locator("body").get_attribute("class").split()
        assert f"theme-{new_theme}" in classes and "theme-default" not in classes
        stylesheet = page.locator("link[rel=stylesheet]").first.get_attribute("href")
        assert stylesheet.startswith(f"/theme/{new_theme}/static/"), stylesheet
        person.shot(f"storefront-{new_theme}")

    # The storefront on a phone: readable without sideways scrolling.
    theme_now = new_theme or "default"
    phone = Visitor(browser, server, watch, album, PHONE)
    phone.go_until(
        "/", lambda p: _theme_of(p) == theme_now, SETTINGS_CACHE_SECONDS + PAGE_CACHE_SECONDS + 1
    )
    assert f"theme-{theme_now}" in phone.page.locator("body").get_attribute("class")
    phone.assert_no_sideways_scroll()
    phone.shot(f"phone-storefront-{theme_now}")
    phone.close()
    person.close()

    watch.assert_clean()
    album.save_index()
    if new_theme is None:
        pytest.skip("only the default theme exists: the theme-switch step was not run")


def _stock_the_shop(owner: Visitor) -> dict[str, int]:
    """The owner adds the categories and card products with their keys, in the admin's own
    pages: the first product's keys come as a pasted list, the others' as uploaded files.
    Returns the product ids by name."""
    page = owner.page
    owner.go("/admin/")
    owner.admin("Categories")
    for name in CATEGORIES:
        page.fill("main form[method=post] input[name=name]", name)
        owner.submit()
        assert f"Category {name} added." in owner.flash("success")
    owner.shot("admin-categories")

    ids = {}
    for number, product in enumerate(PRODUCTS):
        owner.admin("Products")
        page.locator("main a", has_text="Add a product").click()
        assert owner.path == "/admin/products/new"
        form = page.locator("main form[method=post]")
        form.locator("input[name=name]").fill(product["name"])
        form.locator("select[name=category_id]").select_option(label=product["category"])
        form.locator("select[name=kind]").select_option("card")
        form.locator("input[name=price]").fill(product["price"])
        form.locator("input[name=sort_order]").fill(str(number))
        form.locator("textarea[name=description]").fill(product["description"])
        if number == 0:
            owner.shot("admin-product-new")
        owner.submit()
        # A card product goes straight on to its keys page.
        found = re.fullmatch(r"/admin/products/(\d+)/keys", owner.path)
        assert found, owner.path
        ids[product["name"]] = int(found.group(1))
        assert f"Product {product['name']} added." in owner.flash("success")

        keys = "\n".join(product["keys"]) + "\n"
        if number == 0:
            page.fill("textarea[name=keys]", keys)
        else:
            page.set_input_files(
                "input[name=keys_file]",
                {"name": "keys.txt", "mimeType": "text/plain", "buffer": keys.encode()},
            )
        owner.submit("main form[action$='/keys/import']")
        imported = f"Imported {len(product['keys'])}, duplicates 0."
        assert imported in owner.flash("success")
        # The keys list shows them masked: never a whole secret in the admin.
        assert page.locator("main table code").count() == len(product["keys"])
        for secret in product["keys"]:
            assert secret not in page.content()
        if number == 0:
            owner.shot("admin-keys-imported")
    owner.admin("Products")
    owner.shot("admin-products")
    return ids


def _keys_shown(visitor: Visitor) -> list[str]:
    return visitor.page.locator("section.keys ol.key-list code.key").all_inner_texts()


def test_guest_buys_with_sandbox_and_looks_the_order_up(browser, owned_server, shop_env):
    album = Album("guest-purchase")
    watch = Watch()

    owner = Visitor(browser, owned_server, watch, album)
    owner.go("/")
    owner.sign_in(*OWNER)
    ids = _stock_the_shop(owner)
    product_path = f"/p/{ids[BOUGHT['name']]}"

    # The stocked storefront as a first-time guest sees it: README's picture, taken before
    # the sandbox (and its banner) is on.
    visitor = Visitor(browser, owned_server, watch, album)
    visitor.go("/")
    shelves = visitor.text()
    for product in PRODUCTS:
        assert product["name"] in shelves
        assert f"¥{product['price']}" in shelves
    for name in CATEGORIES:
        assert visitor.page.locator("section.shelf h2", has_text=name).count() == 1
    assert visitor.page.locator(".banner-warning").count() == 0
    storefront = visitor.shot("storefront-stocked")
    visitor.close()

    # The owner turns the sandbox gateway on.
    owner.go("/admin/")
    owner.admin("Plugins")
    sandbox = "#plugin-sandbox"
    assert owner.page.locator(f"{sandbox} .badge").inner_text() == "disabled"
    owner.submit(f"{sandbox} form[action$='/toggle']")
    enabled_at = time.monotonic()
    assert "Plugin sandbox updated." in owner.flash("success")
    assert owner.page.locator(f"{sandbox} .badge").inner_text() == "enabled"
    owner.shot("admin-sandbox-enabled")

    # A guest, no cookies: home → the product → buy two keys with the sandbox gateway.
    guest = Visitor(browser, owned_server, watch, album)
    page = guest.page
    guest.go_until(
        "/",
        lambda p: p.locator(".banner-warning").count() == 1,
        PLUGINS_CACHE_SECONDS + PAGE_CACHE_SECONDS + 1,
    )
    assert page.locator(".banner-warning").is_visible()
    guest.shot("guest-home")
    with page.expect_navigation():
        page.locator("a.product-card", has_text=BOUGHT["name"]).click()
    assert guest.path == product_path
    assert page.locator("main h1").inner_text() == BOUGHT["name"]
    assert f"¥{BOUGHT['price']}" in guest.text(".price-line")
    assert "In stock 2" in guest.text(".price-line")
    guest.shot("product")

    # The same page on a phone: readable without sideways scrolling.
    phone = Visitor(browser, owned_server, watch, album, PHONE)
    sandbox_radio = "input[name=gateway][value=sandbox]"
    phone.go_until(
        product_path,
        lambda p: p.locator(sandbox_radio).count() == 1,
        PLUGINS_CACHE_SECONDS + PAGE_CACHE_SECONDS + 1,
    )
    assert phone.page.locator(sandbox_radio).count() == 1
    phone.assert_no_sideways_scroll()
    phone.shot("phone-product")
    phone.close()

    page.fill("input[name=quantity]", "2")
    page.fill("input[name=contact]", GUEST[0])
    page.fill("input[name=query_password]", GUEST[1])
    page.check("input[name=gateway][value=sandbox]")
    guest.shot("product-filled")
    # Whichever worker takes the order must offer the sandbox by now.
    time.sleep(max(0.0, enabled_at + PLUGINS_CACHE_SECONDS + 0.2 - time.monotonic()))
    guest.submit("form[action$='/buy']")

    # The sandbox paid at once and the keys were delivered: the order page shows them.
    found = re.fullmatch(r"/o/([^/]+)", guest.path)
    assert found, guest.path
    order_no = found.group(1)
    assert page.locator("h1 code.order-no").inner_text() == order_no
    assert page.locator(".banner-warning").is_visible()
    assert "Sandbox payments are on" in page.locator(".banner-warning").inner_text()
    assert page.locator("section.status h2").inner_text() == "Delivered"
    details = guest.text("dl.facts")
    assert BOUGHT["name"] in details and "¥100.00" in details
    keys = _keys_shown(guest)
    assert sorted(keys) == sorted(BOUGHT["keys"]), keys
    # One click selects a whole key, ready to copy.
    page.locator("section.keys code.key").first.click()
    assert page.evaluate("String(window.getSelection())") == keys[0]
    guest.shot("order-delivered")

    # The keys as a file, one per line.
    with page.expect_download() as download_info:
        page.locator("section.keys a[download]").click()
    download = download_info.value
    assert download.suggested_filename == f"{order_no}.txt"
    assert Path(download.path()).read_text() == "".join(f"{key}\n" for key in keys)
    guest.close()

    # The same order from another browser, through the look-up: a wrong password first.
    finder = Visitor(browser, owned_server, watch, album)
    page = finder.page
    finder.go("/")
    with page.expect_navigation():
        page.locator("header a[href='/lookup']").click()
    assert finder.path == "/lookup"
    finder.shot("lookup")

    def look_up(password: str, status: int | None = None) -> None:
        page.fill("input[name=order_no]", order_no)
        page.fill("input[name=contact]", GUEST[0])
        page.fill("input[name=query_password]", password)
        finder.submit(status=status)

    look_up("wrong-" + GUEST[1], status=400)
    assert finder.path == "/lookup"
    refusal = page.locator("main .flash-error").inner_text()
    assert refusal == "No order matches this number, contact and password."
    for secret in BOUGHT["keys"]:
        assert secret not in page.content()
    finder.shot("lookup-wrong-password")
    look_up(GUEST[1])
    assert finder.path == f"/o/{order_no}"
    assert _keys_shown(finder) == keys
    finder.shot("lookup-order")

    # Both keys are gone, so the product is sold out now.
    finder.go(product_path)
    assert "Sold out" in finder.text(".price-line")
    assert page.locator("form[action$='/buy'] button[type=submit]").is_disabled()
    finder.close()

    # The owner sees the order and its sold keys; the shop's invariants hold.
    owner.admin("Orders")
    assert order_no in owner.text()
    owner.shot("admin-orders")
    owner.go(f"/admin/products/{ids[BOUGHT['name']]}/keys")
    for state, count in (("available", 0), ("sold", len(BOUGHT["keys"]))):
        stat = owner.page.locator(
            "a.stat", has=owner.page.locator(f".stat-label:text-is('{state}')")
        )
        assert stat.locator(".stat-value").inner_text() == str(count), state
    assert owner.page.locator(f"main table a:text-is('{order_no}')").count() == len(keys)

    # The owner refunds it; the sandbox takes the money back the way it came, and the guest
    # reads the reason and where the money went.
    owner.go(f"/admin/orders/{order_no}")
    owner.page.fill("textarea[name=reason]", "Wrong region: these keys do not work in EU")
    owner.submit(f"form[action$='/admin/orders/{order_no}/refund']")
    assert owner.flash() == "Order refunded."
    owner.go(f"/admin/orders/{order_no}")  # the gateway was asked just after the commit
    assert "sent" in owner.text(".badge.refund-sent")
    assert "Delivered, then voided by the refund." in owner.text()
    owner.shot("admin-order-refunded")
    owner.close()
    after = Visitor(browser, owned_server, watch, album)
    after.go("/lookup")
    after.page.fill("input[name=order_no]", order_no)
    after.page.fill("input[name=contact]", GUEST[0])
    after.page.fill("input[name=query_password]", GUEST[1])
    after.submit()
    status = after.text("section.status")
    assert "Wrong region: these keys do not work in EU" in status, status
    assert "returned to Sandbox" in status, status
    after.shot("order-refunded")
    after.close()
    audit = shop_cli(shop_env, "audit")

    watch.assert_clean()
    album.save_index()
    assert audit["ok"] is True, audit
    README_SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(storefront, README_SCREENSHOT)


def test_invite_link_register_buy_and_the_referrer_sees_pending_commission(
    browser, owned_server, shop_env, tmp_path
):
    """Prepared as an owner scripts it (a referrer, a product with keys, the sandbox on),
    then a visitor arrives through the referrer's invite link, registers and buys; the
    referrer signs in and sees the pending commission on the distributor page."""
    referrer = shop_cli(
        shop_env, "user", "add", "--email", "alice@example.com", "--password", "alice-pass-1"
    )
    product = shop_cli(
        shop_env, "product", "add", "--name", "Invite Card", "--price", "10.00", "--cost", "6.00"
    )
    keys = tmp_path / "invite-keys.txt"
    keys.write_text("E2E-INVITE-1\nE2E-INVITE-2\n")
    shop_cli(shop_env, "keys", "import", str(product["id"]), str(keys))
    gift = shop_cli(shop_env, "product", "add", "--name", "Welcome Gift", "--price", "0", "--free")
    keys.write_text("E2E-GIFT-1\n")
    shop_cli(shop_env, "keys", "import", str(gift["id"]), str(keys))
    shop_cli(shop_env, "plugins", "enable", "sandbox")
    code = referrer["invite_code"]
    watch, album = Watch(), Album("referral")
    visitor = Visitor(browser, owned_server, watch, album)
    page = visitor.page

    visitor.go(f"/r/{code}")
    assert visitor.path == "/"
    visitor.go("/register")
    assert page.input_value("input[name=invite_code]") == code
    page.fill("input[name=email]", "dave@example.com")
    page.fill("input[name=password]", "dave-pass-1")
    page.fill("input[name=confirm]", "dave-pass-1")
    visitor.submit()
    assert page.locator("a[href='/account']").first.is_visible()

    # the sandbox was enabled from the CLI: the other server process may take a moment
    visitor.go_until(
        f"/p/{product['id']}",
        lambda p: p.locator("input[name=gateway][value=sandbox]").count() == 1,
        within=PAGE_CACHE_SECONDS + 3,
    )
    # First with the wallet, which is empty: the order waits on its own page, saying why,
    # with the balance, a top-up link and the other way to pay.
    page.check("input[name=gateway][value=wallet]")
    with page.expect_navigation(url="**/o/**"):
        page.locator("main form[method=post] button[type=submit]").first.click()
    assert "Your balance is too low for this order." in visitor.flash("error")
    assert page.locator("section.status h2").inner_text() == "Awaiting payment"
    assert "¥0.00" in visitor.text("main section.card:has(button[name=gateway]) dl.facts")
    assert page.locator("a[href='/wallet']", has_text="Top up").count() == 1
    visitor.shot("order-wallet-short")
    with page.expect_navigation(url="**/o/**"):
        page.locator("button[name=gateway][value=sandbox]").click()
    assert page.locator("section.status h2").inner_text() == "Delivered"

    # A free product asks for no way to pay: one button, and the key is there.
    visitor.go(f"/p/{gift['id']}")
    assert page.locator("input[name=gateway]").count() == 0
    with page.expect_navigation(url="**/o/**"):
        page.locator("main form[method=post] button", has_text="Get it free").click()
    assert page.locator("section.status h2").inner_text() == "Delivered"
    assert _keys_shown(visitor) == ["E2E-GIFT-1"]
    visitor.shot("order-free-gift")

    visitor.sign_out()
    visitor.sign_in("alice@example.com", "alice-pass-1")
    visitor.go("/distribution")
    assert page.locator("#commission-pending").inner_text() == "¥1.00"
    assert "d***@example.com" in visitor.text()
    assert page.locator("img.invite-qr").evaluate("i => i.complete && i.naturalWidth > 0")
    visitor.shot("distribution")
    visitor.close()
    album.save_index()
    watch.assert_clean()
