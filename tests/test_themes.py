"""Themes as the owner and visitors meet them: switching without a restart, fallback to the
default theme, static files, and the walls a theme folder cannot get through."""

import json
import re
import shutil

import pytest
from conftest import login, submit
from jinja2 import TemplateNotFound

from shop import settings, themes
from shop.settings.models import Setting
from shop.settings.service import invalidate

INK_MARKER = "ink-masthead"  # a class only Ink's base.html has
STOREFRONT_PAGES = ["/", "/login", "/register", "/password/forgot", "/no-such-page"]


def active_setting(app):
    with app.app_context():
        invalidate()
        return settings.get("theme.active")


@pytest.fixture
def staff(client, owner):
    assert login(client, *owner).status_code == 302
    return client


def switch(client, name):
    return submit(client, "/admin/themes", {"theme": name})


def test_both_themes_are_installed_with_metadata_and_preview(app, staff):
    with app.app_context():
        installed = themes.available()
    assert {"default", "ink"} <= set(installed)
    for theme in installed.values():
        assert theme.title and theme.version and theme.description and theme.preview
    page = staff.get("/admin/themes").get_data(as_text=True)
    assert "Ink" in page and "/theme/ink/static/preview.svg" in page
    preview = staff.get("/theme/ink/static/preview.svg")
    assert preview.status_code == 200 and preview.mimetype == "image/svg+xml"
    assert preview.data != staff.get("/theme/default/static/preview.svg").data


def test_switching_in_the_admin_changes_the_storefront_on_the_next_request(app, staff):
    before = staff.get("/").get_data(as_text=True)
    assert INK_MARKER not in before and "/theme/default/static/style.css" in before

    response = switch(staff, "ink")
    assert response.status_code == 303
    home = staff.get("/").get_data(as_text=True)
    assert INK_MARKER in home and "/theme/ink/static/style.css" in home
    assert active_setting(app) == "ink"

    assert switch(staff, "default").status_code == 303
    assert INK_MARKER not in staff.get("/").get_data(as_text=True)


def test_an_unknown_theme_is_refused_with_a_message_and_nothing_changes(app, staff):
    response = switch(staff, "nope")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "There is no theme named &#39;nope&#39;" in page
    assert "Installed themes: default, ink" in page
    assert active_setting(app) == "default"
    assert INK_MARKER not in staff.get("/").get_data(as_text=True)


@pytest.mark.parametrize("theme", ["default", "ink"])
def test_every_theme_header_leads_guests_to_the_look_up_and_customers_to_their_orders(
    app, client, owner, theme
):
    """The header is the way to these pages, so a theme with its own base.html must link them."""
    with app.app_context():
        settings.set_value("theme.active", theme)
    guest = client.get("/").get_data(as_text=True)
    header = guest.split("<main", 1)[0]
    assert 'href="/lookup"' in header and 'href="/login"' in header
    assert login(client, *owner).status_code == 302
    header = client.get("/").get_data(as_text=True).split("<main", 1)[0]
    for url in ("/orders", "/wallet", "/account", "/admin/"):
        assert f'href="{url}"' in header, url
    assert 'href="/lookup"' not in header


def test_a_template_missing_from_ink_falls_back_to_default_inside_inks_layout(app, staff):
    assert not (themes.THEME_DIR / "ink/templates/account/login.html").exists()
    switch(staff, "ink")
    page = staff.get("/account").get_data(as_text=True)
    assert INK_MARKER in page and 'name="current"' in page  # default's account page
    anonymous = app.test_client()
    login_page = anonymous.get("/login").get_data(as_text=True)
    assert INK_MARKER in login_page and 'name="password"' in login_page


def test_static_files_fall_back_to_default_and_unknown_ones_are_404(app, staff):
    switch(staff, "ink")
    assert not (themes.THEME_DIR / "ink/static/favicon.svg").exists()
    favicon = staff.get("/theme/ink/static/favicon.svg")
    assert favicon.status_code == 200
    assert favicon.data == (themes.THEME_DIR / "default/static/favicon.svg").read_bytes()
    own = staff.get("/theme/ink/static/style.css")
    assert own.data == (themes.THEME_DIR / "ink/static/style.css").read_bytes()
    assert staff.get("/theme/ink/static/missing.css").status_code == 404
    assert staff.get("/theme/nope/static/style.css").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/theme/ink/static/../theme.json",
        "/theme/ink/static/%2e%2e/theme.json",
        "/theme/ink/static/..%2Ftemplates%2Fbase.html",
        "/theme/ink/static/..%2F..%2F..%2Fshop%2Fconfig.py",
        "/theme/ink/static/%2Fetc%2Fpasswd",
        "/theme/ink/static//etc/passwd",
        "/theme/..%2Fshop/static/admin.css",
        "/theme/%2E%2E/static/theme.json",
    ],
)
def test_path_traversal_in_theme_static_is_404_never_a_file(client, owner, url):
    response = client.get(url, follow_redirects=True)
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "root:" not in body and '"preview"' not in body
    assert "{% block" not in body and "load_config" not in body


def test_template_names_cannot_leave_the_themes_folder(app, tmp_path):
    """Template names are never taken from a request, but the loader must hold on its own:
    an absolute path or '..' after the theme name finds nothing."""
    secret = tmp_path / "secret.html"
    secret.write_text("TOP-SECRET")
    names = [
        f"theme/default/{secret}",
        f"theme/default/{secret.relative_to(secret.anchor)}",
        "theme/default//etc/passwd",
        "theme/ink/../../shop/config.py",
        "theme/../shop/templates/admin/base.html",
        "theme/..%2Fshop/base.html",
        "theme//base.html",
        "theme/default/",
    ]
    with app.app_context():
        for name in names:
            with pytest.raises(TemplateNotFound):
                app.jinja_env.get_template(name)


def test_a_tampered_active_theme_setting_falls_back_to_default(app, client, owner):
    with app.app_context():
        Setting.create(key="theme.active", value=json.dumps("../shop/templates"))
        invalidate()
    page = client.get("/").get_data(as_text=True)
    assert "/theme/default/static/style.css" in page


def test_a_theme_cannot_override_admin_templates(app, staff, tmp_path, monkeypatch):
    theme_dir = tmp_path / "themes"
    shutil.copytree(themes.THEME_DIR / "default", theme_dir / "default")
    evil = theme_dir / "evil"
    (evil / "templates" / "admin").mkdir(parents=True)
    (evil / "theme.json").write_text(json.dumps({"name": "Evil", "version": "1"}))
    (evil / "templates" / "home.html").write_text("EVIL-STOREFRONT")
    for name in ("base.html", "dashboard.html", "themes.html"):
        (evil / "templates" / "admin" / name).write_text("EVIL-ADMIN")
    monkeypatch.setattr(themes, "THEME_DIR", theme_dir)

    assert switch(staff, "evil").status_code == 303
    assert "EVIL-STOREFRONT" in staff.get("/").get_data(as_text=True)  # it is active
    for url in ("/admin/", "/admin/themes", "/admin/settings"):
        response = staff.get(url)
        assert response.status_code == 200
        assert "EVIL-ADMIN" not in response.get_data(as_text=True)


def test_a_theme_folder_with_broken_metadata_is_skipped(app, staff, tmp_path, monkeypatch):
    theme_dir = tmp_path / "themes"
    shutil.copytree(themes.THEME_DIR / "default", theme_dir / "default")
    (theme_dir / "broken").mkdir()
    (theme_dir / "broken" / "theme.json").write_text("{not json")
    monkeypatch.setattr(themes, "THEME_DIR", theme_dir)
    page = staff.get("/admin/themes")
    assert page.status_code == 200 and "broken" not in page.get_data(as_text=True)
    refused = submit(staff, "/admin/themes", {"theme": "broken"}, form_url="/admin/settings")
    assert refused.status_code == 400


def run_cli(app, *args):
    result = app.test_cli_runner().invoke(args=["shop", *args, "--json"])
    return result.exit_code, json.loads(result.output)


def test_cli_refuses_an_unknown_theme_with_exit_2(app, client, owner):
    code, out = run_cli(app, "settings", "set", "theme.active", "nope")
    assert code == 2
    assert out["error"]["code"] == "bad_input"
    assert "nope" in out["error"]["message"] and "default, ink" in out["error"]["message"]
    assert active_setting(app) == "default"

    code, out = run_cli(app, "settings", "set", "theme.active", "ink")
    assert (code, out) == (0, {"key": "theme.active", "value": "ink"})
    assert INK_MARKER in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("theme", ["default", "ink"])
def test_pages_suit_phones_and_load_nothing_remote_or_inline(app, client, owner, theme):
    with app.app_context():
        settings.set_value("theme.active", theme)
    for url in STOREFRONT_PAGES:
        page = client.get(url).get_data(as_text=True)
        assert 'name="viewport" content="width=device-width' in page, url
        assert "<script" not in page, url
        assert not re.search(r"\sstyle=", page), url
        assert not re.search(r"""(?:src|href|action)=["'](?:https?:)?//""", page), url
    css = client.get(f"/theme/{theme}/static/style.css").get_data(as_text=True)
    assert "@media" in css  # narrow screens get their own rules
    assert "@import" not in css and not re.search(r"url\(\s*['\"]?(?:https?:)?//", css)
