"""Chinese and English: the shop's language, the visitor's switch, translated refusals, and a
catalog that stays complete and compiled."""

import io
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from conftest import login, submit
from selling import card_product

from shop import settings
from shop.messages import N_, Message, Refusal, joined
from shop.orders.service import OrderError

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "shop" / "translations"
# Babel parses zh_CN as zh_Hans_CN, and flask-babel looks for the folder by that name
ZH = TRANSLATIONS / "zh_Hans_CN" / "LC_MESSAGES"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}  # as in the README's command
PLACEHOLDER = re.compile(r"%\((\w+)\)")


@pytest.fixture
def zh_shop(app, owner):
    with app.app_context():
        settings.set_value("shop.language", "zh_CN")
    return owner


def page(response) -> str:
    return response.get_data(as_text=True)


def test_the_shop_language_zh_cn_shows_chinese(client, zh_shop):
    login_page = page(client.get("/login"))
    assert '<html lang="zh-CN">' in login_page
    assert "<h1>登录</h1>" in login_page and "密码" in login_page and "忘记密码？" in login_page
    assert ">English</button>" in login_page  # the switch offers the other language
    assert "Sign in" not in login_page


def test_the_lang_cookie_switches_to_english_and_back(client, zh_shop):
    response = submit(client, "/lang/en", {"next": "/login"}, form_url="/login")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    english = page(client.get("/login"))
    assert '<html lang="en">' in english and "<h1>Sign in</h1>" in english
    assert ">中文</button>" in english

    submit(client, "/lang/zh_CN", {"next": "/login"}, form_url="/login")
    assert "<h1>登录</h1>" in page(client.get("/login"))


def test_the_switch_works_for_a_signed_in_user_whose_account_has_a_language(client, zh_shop):
    login(client, *zh_shop)  # the owner chose English at setup: the account outranks the shop
    assert "Sign out" in page(client.get("/"))
    submit(client, "/lang/zh_CN", {"next": "/"}, form_url="/")
    assert "退出登录" in page(client.get("/"))


def test_flashed_messages_are_translated(client, zh_shop):
    response = submit(client, "/password/forgot", {"email": "x@example.com"})
    assert response.status_code == 302
    assert "如果该邮箱已注册，重置链接正在发往你的邮箱。" in page(client.get("/login"))


def test_service_refusals_are_translated(client, zh_shop):
    wrong = login(client, zh_shop[0], "not-the-password")
    assert wrong.status_code == 400
    assert "邮箱或密码错误。" in page(wrong)

    short = submit(
        client,
        "/register",
        {"email": "bob@example.com", "password": "short", "confirm": "short"},
    )
    assert short.status_code == 400 and "密码至少需要 8 个字符。" in page(short)

    client.set_cookie("lang", "en")
    assert "Wrong email or password." in page(login(client, zh_shop[0], "not-the-password"))


def test_setting_descriptions_and_setting_errors_are_translated(client, zh_shop):
    login(client, *zh_shop)
    submit(client, "/lang/zh_CN", {"next": "/"}, form_url="/")
    settings_page = page(client.get("/admin/settings"))
    assert "顾客看到的店铺主题" in settings_page and "店铺名称，显示在每个页面上" in settings_page
    refused = submit(client, "/admin/themes", {"theme": "nope"})
    assert refused.status_code == 400
    assert "没有名为 &#39;nope&#39; 的主题。已安装的主题：default, ink。" in page(refused)


def test_error_pages_are_translated_for_people_but_json_stays_english(client, zh_shop):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and "页面不存在" in page(missing)
    as_json = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert as_json.json["error"]["code"] == "not_found"
    assert "requested URL was not found" in as_json.json["error"]["message"]


def test_selling_refusals_are_translated_on_pages(client, app, zh_shop):
    with app.app_context():
        product = card_product(keys=3).id
    guest = {"contact": "guest@example.com", "query_password": "open-sesame"}
    url = f"/p/{product}"
    too_many = submit(client, f"{url}/buy", {"quantity": "4", **guest}, form_url=url)
    assert too_many.status_code == 409 and "库存仅剩 3 件，请减少购买数量。" in page(too_many)
    no_password = submit(client, f"{url}/buy", {"quantity": "1", "contact": "a@b.cn"}, form_url=url)
    assert no_password.status_code == 400 and "请设置至少 4 个字符的查询密码。" in page(no_password)


def test_catalog_problems_and_warnings_are_translated_for_staff(client, zh_shop):
    login(client, *zh_shop)
    submit(client, "/lang/zh_CN", {"next": "/"}, form_url="/")
    form = {"name": "点卡", "kind": "card", "price": "50.00", "visible": "1"}
    refused = submit(client, "/admin/products/new", {**form, "tiers": "ten=9\n10=9.505"})
    assert refused.status_code == 400
    assert (
        "批发价：第 1 行：请按“数量=单价”填写，例如 10=9.50; "
        "第 2 行：&#39;9.505&#39; 的小数超过两位。" in page(refused)
    )
    saved = submit(client, "/admin/products/new", {**form, "cost": "60.00"})
    assert saved.status_code == 303
    shown = page(client.get(saved.headers["Location"]))
    assert "售价 50.00 低于成本价 60.00：每卖出一件都会亏本。" in shown


def test_refusals_stay_english_as_strings_and_translate_nested_messages(app):
    refused = OrderError(N_("Only %(n)d left in stock; lower the quantity."), "sold_out", 409, n=2)
    assert (str(refused), refused.code, refused.status) == (
        "Only 2 left in stock; lower the quantity.",
        "sold_out",
        409,
    )
    decimals = Refusal(N_("%(text)s has more than two decimals"), text="'9.505'")
    problems = joined([Message(N_("line %(number)d: %(problem)s"), number=2, problem=decimals)])
    wrapped = Refusal(Message(N_("Tiers: %(problem)s."), problem=Refusal(problems)))
    assert str(wrapped) == "Tiers: line 2: '9.505' has more than two decimals."
    with app.test_request_context(headers={"Cookie": "lang=zh_CN"}):
        assert wrapped.translated() == "批发价：第 2 行：'9.505' 的小数超过两位。"
        assert refused.translated() == "库存仅剩 2 件，请减少购买数量。"


# --- the catalog itself --------------------------------------------------------------------


def extracted_ids() -> set[str]:
    """Run the same extraction as the README's pybabel command, in process."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = extract_from_dir(ROOT, method_map, options_map, keywords=KEYWORDS)
    return {msg[0] if isinstance(msg, tuple) else msg for _file, _line, msg, *_ in found}


def load_po():
    with open(ZH / "messages.po", "rb") as f:
        return read_po(f, locale="zh_Hans_CN")


def test_every_extracted_message_has_a_chinese_translation():
    extracted = extracted_ids()
    catalog = load_po()
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    untranslated = sorted(extracted - translated)
    assert not untranslated, f"translate these in {ZH / 'messages.po'}: {untranslated}"
    stale = sorted({m.id for m in catalog if m.id} - extracted)
    assert not stale, f"no longer in the code, run pybabel update: {stale}"


def test_the_committed_template_matches_the_code():
    with open(TRANSLATIONS / "messages.pot", "rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    assert template == extracted_ids(), "run pybabel extract (see shop/translations/README.md)"


def test_translations_keep_every_placeholder():
    """Babel's check refuses unknown or retyped placeholders; a dropped one (the count
    hard-coded into the translation) is caught by comparing the names."""
    catalog = load_po()
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    problems += [
        (m.id, "placeholders differ")
        for m in catalog
        if m.id and sorted(PLACEHOLDER.findall(m.id)) != sorted(PLACEHOLDER.findall(m.string))
    ]
    assert not problems


def test_the_committed_mo_is_compiled_from_the_committed_po():
    compiled = io.BytesIO()
    write_mo(compiled, load_po())
    compiled.seek(0)
    with open(ZH / "messages.mo", "rb") as f:
        committed = read_mo(f)
    fresh = {m.id: m.string for m in read_mo(compiled) if m.id}
    assert {m.id: m.string for m in committed if m.id} == fresh, "run pybabel compile"
