"""The demo catalog: three categories and products of every kind, the card products stocked
with keys, so a shop set up with `init --demo` (or the setup page's checkbox) sells at once.

Everything goes through the catalog and inventory services, as if staff typed it. Loading
again adds only what is missing (categories by slug, products by name). The keys are random,
marked DEMO, and worthless.
"""

import secrets
import string

from shop.catalog import service as catalog
from shop.catalog.models import Category, Product
from shop.demo import loader
from shop.inventory import service as inventory

KEYS_PER_PRODUCT = 20
KEY_ALPHABET = string.ascii_uppercase + string.digits

CATEGORIES = [
    ("game-cards", "游戏点卡 Game cards", 10),
    ("memberships", "会员充值 Memberships & top-ups", 20),
    ("software", "软件激活 Software licences", 30),
]

QQ = "qq|QQ 号 QQ number|[1-9][0-9]{4,11}|required"
PHONE = "phone|手机号 Mobile number|1[3-9][0-9]{9}|required"
EMAIL = "email|邮箱 Account email|[^@\\s]+@[^@\\s]+\\.[A-Za-z]{2,}|required"

# (category slug, name, kind, price, cost, key groups, extra form fields)
PRODUCTS = [
    ("game-cards", "Steam 钱包充值卡 ¥50", "card", "50.00", "46.00", (5, 5, 5),
     {"tiers": "10=49.00", "low_stock_threshold": "5"}),
    ("game-cards", "Steam 钱包充值卡 ¥100", "card", "100.00", "92.00", (5, 5, 5), {}),
    ("game-cards", "App Store & iTunes 充值卡 ¥100", "card", "100.00", "95.00", (4, 4, 4, 4), {}),
    ("game-cards", "网易一卡通 30 元 NetEase card", "card", "29.00", "27.00", (4, 4, 4, 4),
     {"tiers": "10=28.50\n50=28.00"}),
    ("software", "Windows 11 Pro licence", "card", "99.00", "60.00", (5, 5, 5, 5, 5),
     {"low_stock_threshold": "3"}),
    ("software", "Microsoft Office 2021 专业增强版 Professional Plus", "card", "129.00",
     "80.00", (5, 5, 5, 5, 5), {}),
    ("memberships", "腾讯视频 VIP 月卡 Tencent Video monthly", "recharge", "25.00", "21.00", (),
     {"fields": QQ}),
    ("memberships", "爱奇艺黄金 VIP 年卡 iQIYI yearly", "recharge", "198.00", "170.00", (),
     {"fields": PHONE}),
    ("memberships", "中国移动话费充值 ¥50 China Mobile top-up", "recharge", "49.50", "48.80", (),
     {"fields": PHONE, "max_qty": "5"}),
    ("memberships", "QQ 音乐豪华绿钻 月卡 QQ Music monthly", "recharge", "18.00", "15.00", (),
     {"fields": QQ}),
    ("memberships", "网易云音乐黑胶 VIP 月卡 NetEase Music (manual)", "manual", "15.00",
     "12.00", (), {"fields": PHONE}),
    ("software", "Adobe Creative Cloud 一个月 one month (manual)", "manual", "88.00", "60.00", (),
     {"fields": EMAIL, "max_qty": "3"}),
]  # fmt: skip

DESCRIPTION = (
    "<p><strong>{name}</strong></p>"
    "<p>{how}</p>"
    "<ul><li>演示商品，卡密无效 · Demo product, the keys are not real.</li></ul>"
)
HOW = {
    "card": "付款后立即自动发卡。Delivered automatically the moment you pay.",
    "recharge": "填写账号，付款后直充到账。Enter the account; it is topped up after payment.",
    "manual": "付款后客服人工发货。Staff deliver it by hand after payment.",
}


def _key(groups: tuple[int, ...]) -> str:
    parts = ["".join(secrets.choice(KEY_ALPHABET) for _ in range(n)) for n in groups]
    return "-".join(["DEMO", *parts])


@loader
def demo_catalog(actor=None) -> str | None:
    added = {"categories": 0, "products": 0, "keys": 0}
    categories = {}
    for slug, name, sort_order in CATEGORIES:
        category = Category.get_or_none(Category.slug == slug)
        if category is None:
            raw = {"name": name, "slug": slug, "sort_order": str(sort_order), "visible": "1"}
            category = catalog.create_category(raw, actor=actor)
            added["categories"] += 1
        categories[slug] = category.id
    for sort_order, (slug, name, kind, price, cost, groups, extra) in enumerate(PRODUCTS):
        if Product.select().where(Product.name == name).exists():
            continue
        raw = {
            "name": name,
            "category_id": str(categories[slug]),
            "kind": kind,
            "price": price,
            "cost": cost,
            "sort_order": str(sort_order),
            "visible": "1",
            "description": DESCRIPTION.format(name=name, how=HOW[kind]),
            **extra,
        }
        product, _warnings = catalog.create_product(raw, actor=actor)
        added["products"] += 1
        if kind == "card":
            keys = [_key(groups) for _ in range(KEYS_PER_PRODUCT)]
            result = inventory.import_keys(product, keys, actor=actor, batch="demo")
            added["keys"] += result["imported"]
    if not any(added.values()):
        return None
    return "demo catalog: {categories} categories, {products} products, {keys} keys".format(**added)
