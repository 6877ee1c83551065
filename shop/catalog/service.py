"""Creating and changing categories and products: the one way staff, the CLI and the demo
loader write the catalog.

Input arrives as the strings a person typed (a form or the command line). Every field is
checked before anything is written, so a refused save changes nothing and reports every
problem at once (`CatalogError.errors`, field name → message). Amounts go through
`shop.money.parse_amount`, so "10.00" is 1000 fen and "1.234" is refused rather than rounded.
Every change writes an audit record in the same transaction. Problems and warnings are
`shop.messages` messages: English as strings (CLI, logs), `translated()` on the admin pages.
"""

import functools
import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import nh3
from flask import current_app

from shop.audit import record
from shop.catalog.models import KINDS, Category, Product
from shop.clock import now
from shop.db import db
from shop.messages import N_, Message, Refusal, joined
from shop.money import AmountError, format_amount, parse_amount

MAX_NAME = 120
MAX_CATEGORY_NAME = 80
MAX_QTY = 100_000
MAX_DESCRIPTION = 50_000
MAX_FIELDS = 10
MAX_TIERS = 20
MAX_IMAGE_BYTES = 2 * 1024 * 1024
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
IMAGE_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/%-]{1,254}$")
UPLOAD_NAME_RE = re.compile(r"^[0-9a-f]{32}\.(png|jpg|webp|gif)$")
INT_MESSAGES = {
    "min_qty": N_("The minimum quantity must be a whole number from %(low)d to %(high)d."),
    "max_qty": N_("The maximum quantity must be a whole number from %(low)d to %(high)d."),
    "low_stock_threshold": N_(
        "The low-stock threshold must be a whole number from %(low)d to %(high)d."
    ),
    "sort_order": N_("The sort order must be a whole number from %(low)d to %(high)d."),
}
AMOUNT_MISSING = {
    "price": N_("Enter the price, like 10.00."),
    "cost": N_("Enter the cost, like 10.00."),
}
AMOUNT_WRONG = {"price": N_("Price: %(problem)s."), "cost": N_("Cost: %(problem)s.")}
TRUE = ("1", "on", "true", "yes", "y")
REQUIRED_WORDS = {"required": True, "optional": False, "yes": True, "no": False}
# Magic bytes, not the file name or the browser's Content-Type: both are whatever the sender
# says. Only raster formats: an SVG is a document that can carry script.
IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)

DESCRIPTION_TAGS = {
    "p", "br", "b", "strong", "i", "em", "u", "s", "del", "small", "sub", "sup", "span",
    "h2", "h3", "h4", "ul", "ol", "li", "blockquote", "code", "pre", "hr",
    "table", "thead", "tbody", "tr", "th", "td", "a", "img",
}  # fmt: skip
DESCRIPTION_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}


class CatalogError(Refusal):
    """A refused catalog change. `errors` maps each bad field to what is wrong with it (a
    `Message`: English as a string, `translated_errors()` for a page)."""

    def __init__(self, errors: dict[str, Message]):
        super().__init__(joined(errors.values()))
        self.errors = errors

    def translated_errors(self) -> dict[str, str]:
        return {name: problem.translated() for name, problem in self.errors.items()}


# text formats staff type ---------------------------------------------------------------------


def sanitize_description(html: str) -> str:
    """The description as safe HTML: basic formatting, links and the shop's own images.

    The description is shown unescaped on the product page, so it is cleaned when saved, not
    trusted when shown: nh3 drops script and style with their content, every `on*` handler and
    `style` attribute, and any URL scheme but http(s) and mailto (no javascript:). Links get
    rel="noopener nofollow" so a product page lends no ranking and no window handle to
    whatever it links to. Images must be relative to the shop: a remote image would let
    another host see every visitor (and the shop's pages load nothing from the internet).
    """
    return nh3.clean(
        html or "",
        tags=DESCRIPTION_TAGS,
        attributes=DESCRIPTION_ATTRIBUTES,
        attribute_filter=_same_site_images,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener nofollow",
    ).strip()


def _same_site_images(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src" and not _is_relative(value):
        return None
    return value


def _is_relative(url: str) -> bool:
    """A URL on this shop: no scheme, no host, and nothing a browser reads as a host
    ("//x" and "/\\x" both mean another site)."""
    parts = urlsplit(url)
    return not (parts.scheme or parts.netloc or url.startswith("//") or "\\" in url)


def parse_fields(text: str) -> list[dict]:
    """What the buyer must fill in, one field per line: `name|Label|pattern|required`.

    The pattern and the last word are optional (`account|QQ number` is a required field with
    no pattern); the last part is read as required/optional only when it is one of those words,
    so a pattern may itself contain `|` (`phone|Phone|1[3-9]\\d{9}|\\+861[3-9]\\d{9}`). Each
    pattern must compile now, not fail at the first checkout.
    """
    fields, errors = [], []
    for number, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        name, label = parts[0], (parts[1] if len(parts) > 1 and parts[1] else parts[0])
        required = True
        rest = parts[2:]
        if rest and rest[-1].lower() in REQUIRED_WORDS:
            required = REQUIRED_WORDS[rest.pop().lower()]
        pattern = "|".join(rest).strip()
        if not FIELD_NAME_RE.match(name):
            errors.append(
                Message(
                    N_("line %(number)d: the name %(name)s must be lowercase letters, digits, _"),
                    number=number,
                    name=repr(name),
                )
            )
            continue
        if any(f["name"] == name for f in fields):
            errors.append(
                Message(
                    N_("line %(number)d: the field %(name)s is listed twice"),
                    number=number,
                    name=repr(name),
                )
            )
            continue
        if len(label) > 60 or len(pattern) > 200:
            errors.append(
                Message(N_("line %(number)d: the label or pattern is too long"), number=number)
            )
            continue
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append(
                    Message(
                        N_("line %(number)d: the pattern does not compile (%(error)s)"),
                        number=number,
                        error=str(exc),
                    )
                )
                continue
        fields.append({"name": name, "label": label, "pattern": pattern, "required": required})
    if len(fields) > MAX_FIELDS:
        errors.append(Message(N_("at most %(count)d fields"), count=MAX_FIELDS))
    if errors:
        raise Refusal(joined(errors))
    return fields


def format_fields(fields: list[dict]) -> str:
    """The inverse of `parse_fields`, to put a product's fields back in the edit form."""
    lines = []
    for f in fields:
        parts = [f["name"], f.get("label") or f["name"]]
        if f.get("pattern"):
            parts.append(f["pattern"])
        parts.append("required" if f.get("required", True) else "optional")
        lines.append("|".join(parts))
    return "\n".join(lines)


def parse_tiers(text: str, price: int, max_qty: int, free: bool) -> list[list[int]]:
    """Wholesale tiers, one per line `quantity=unit price` (`10=9.50`: ten or more cost 9.50
    each). Prices are parsed exactly like the product price. A tier must lower the price (one
    that does not would never apply) and must be reachable within the quantity limit."""
    tiers: dict[int, int] = {}
    errors = []
    for number, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        qty_text, eq, price_text = line.partition("=")
        qty = _int_or_none(qty_text)
        if not eq or qty is None:
            errors.append(
                Message(N_("line %(number)d: write quantity=price, e.g. 10=9.50"), number=number)
            )
            continue
        try:
            unit = parse_amount(price_text, allow_zero=free)
        except AmountError as exc:
            errors.append(Message(N_("line %(number)d: %(problem)s"), number=number, problem=exc))
            continue
        if not 2 <= qty <= max_qty:
            errors.append(
                Message(
                    N_("line %(number)d: the quantity must be between 2 and %(max)d"),
                    number=number,
                    max=max_qty,
                )
            )
        elif qty in tiers:
            errors.append(
                Message(
                    N_("line %(number)d: the quantity %(qty)d is listed twice"),
                    number=number,
                    qty=qty,
                )
            )
        elif unit >= price:
            errors.append(
                Message(
                    N_("line %(number)d: %(price)s is not below the unit price"),
                    number=number,
                    price=format_amount(unit),
                )
            )
        else:
            tiers[qty] = unit
    if len(tiers) > MAX_TIERS:
        errors.append(Message(N_("at most %(count)d tiers"), count=MAX_TIERS))
    if errors:
        raise Refusal(joined(errors))
    return [[qty, tiers[qty]] for qty in sorted(tiers)]


def format_tiers(tiers) -> str:
    return "\n".join(f"{qty}={format_amount(unit)}" for qty, unit in tiers)


# images --------------------------------------------------------------------------------------


def upload_dir() -> Path:
    return Path(current_app.instance_path) / "uploads"


def image_kind(data: bytes) -> str | None:
    """png / jpg / gif / webp from the file's first bytes, or None for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((kind for magic, kind in IMAGE_MAGIC if data.startswith(magic)), None)


def _read_image(upload) -> tuple[bytes, str]:
    data = upload.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise Refusal(N_("the image is larger than 2 MB"))
    kind = image_kind(data)
    if kind is None:
        raise Refusal(N_("the image must be a PNG, JPEG, WebP or GIF file"))
    return data, kind


def _store_image(data: bytes, kind: str) -> str:
    """Write the image under a random name (never the sender's) and return its URL path."""
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{kind}"
    (folder / name).write_bytes(data)
    return f"/uploads/{name}"


def _drop_if_unused(path: str) -> None:
    """Delete an uploaded image no product shows any more (after the edit that replaced it
    committed). Staff may have typed the same path into another product or a description,
    so it goes only when nothing mentions it."""
    name = path.removeprefix("/uploads/")
    if not path.startswith("/uploads/") or not UPLOAD_NAME_RE.match(name):
        return
    used = (
        Product.select()
        .where((Product.image == path) | Product.description.contains(path))
        .exists()
    )
    if not used:
        (upload_dir() / name).unlink(missing_ok=True)


# categories ----------------------------------------------------------------------------------


def _clean_category(raw: Mapping, current: Category | None) -> dict:
    errors = {}
    name = _one_line(raw.get("name"))
    if not name:
        errors["name"] = Message(N_("A category needs a name."))
    elif len(name) > MAX_CATEGORY_NAME:
        errors["name"] = Message(
            N_("The name is longer than %(count)d characters."), count=MAX_CATEGORY_NAME
        )
    else:
        same = Category.select().where(Category.name == name)
        if current is not None:
            same = same.where(Category.id != current.id)
        if same.exists():
            errors["name"] = Message(N_("There is already a category named %(name)s."), name=name)
    slug = (raw.get("slug") or "").strip().lower() or (current.slug if current else _slug(name))
    if not SLUG_RE.match(slug):
        errors["slug"] = Message(N_("The slug may hold lowercase letters, digits and dashes."))
    else:
        taken = Category.select().where(Category.slug == slug)
        if current is not None:
            taken = taken.where(Category.id != current.id)
        if taken.exists():
            errors["slug"] = Message(N_("The slug %(slug)s is taken."), slug=slug)
    sort_order = _int_field(raw, "sort_order", -MAX_QTY, MAX_QTY, errors, default=0)
    if errors:
        raise CatalogError(errors)
    return {"name": name, "slug": slug, "sort_order": sort_order, "visible": _flag(raw, "visible")}


def _slug(name: str) -> str:
    """An ASCII slug from the name; a name with no ASCII letters (most Chinese names) gets a
    short random one instead, which staff may replace."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60]
    if not slug:
        slug = f"c-{secrets.token_hex(3)}"
    candidate, n = slug, 2
    while Category.select().where(Category.slug == candidate).exists():
        candidate, n = f"{slug}-{n}", n + 1
    return candidate


def create_category(raw: Mapping, actor=None) -> Category:
    with db.atomic():
        values = _clean_category(raw, None)
        category = Category.create(**values)
        record("category.create", target=f"category:{category.id}", actor=actor, **values)
    return category


def update_category(category: Category, raw: Mapping, actor=None) -> Category:
    with db.atomic():
        values = _clean_category(raw, category)
        changes = _changes(category, values)
        if changes:
            Category.update(**values).where(Category.id == category.id).execute()
            record("category.update", target=f"category:{category.id}", actor=actor, **changes)
    return Category.get_by_id(category.id)


def category_named(name: str, actor=None) -> Category:
    """The category called `name`, created when missing (the CLI names categories)."""
    found = Category.get_or_none(Category.name == _one_line(name))
    return found or create_category({"name": name, "visible": "1"}, actor=actor)


# products ------------------------------------------------------------------------------------


def _clean_product(raw: Mapping, current: Product | None, upload=None) -> tuple[dict, list, tuple]:
    """(column values, warnings, image to store) from the typed form; raises CatalogError."""
    errors: dict[str, Message] = {}
    warnings: list[Message] = []
    values: dict = {}

    name = _one_line(raw.get("name"))
    if not name:
        errors["name"] = Message(N_("A product needs a name."))
    elif len(name) > MAX_NAME:
        errors["name"] = Message(
            N_("The name is longer than %(count)d characters."), count=MAX_NAME
        )
    values["name"] = name

    category_id = (raw.get("category_id") or "").strip()
    values["category"] = None
    if category_id:
        found = _int_or_none(category_id)
        if found is None or not Category.select().where(Category.id == found).exists():
            errors["category_id"] = Message(N_("Choose an existing category."))
        values["category"] = found

    kind = (raw.get("kind") or "card").strip()
    if kind not in KINDS:
        errors["kind"] = Message(N_("The kind must be one of %(kinds)s."), kinds=", ".join(KINDS))
    elif current is not None and kind != current.kind and _has_history(current):
        errors["kind"] = Message(N_("A product with card keys or orders cannot change its kind."))
    values["kind"] = kind

    free = _flag(raw, "free")
    values["free"] = free
    values["price"] = _amount(raw, "price", errors, required=True)
    if values["price"] == 0 and not free and "price" not in errors:
        errors["price"] = Message(
            N_("The price must be more than zero; tick 'free' to give it away.")
        )
    values["cost"] = _amount(raw, "cost", errors, required=False)
    if "price" not in errors and "cost" not in errors and values["cost"] > values["price"]:
        warnings.append(
            Message(
                N_("The price %(price)s is below the cost %(cost)s: every sale loses money."),
                price=format_amount(values["price"]),
                cost=format_amount(values["cost"]),
            )
        )

    values["min_qty"] = _int_field(raw, "min_qty", 1, MAX_QTY, errors, default=1)
    values["max_qty"] = _int_field(raw, "max_qty", 1, MAX_QTY, errors, default=100)
    _check_quantity_limits(values, errors)
    values["low_stock_threshold"] = _int_field(
        raw, "low_stock_threshold", 0, MAX_QTY, errors, default=0
    )
    values["sort_order"] = _int_field(raw, "sort_order", -MAX_QTY, MAX_QTY, errors, default=0)
    values["visible"] = _flag(raw, "visible")

    description = raw.get("description") or ""
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = Message(
            N_("The description is longer than %(count)d characters."), count=MAX_DESCRIPTION
        )
    values["description"] = sanitize_description(description)

    try:
        values["fields_json"] = json.dumps(parse_fields(raw.get("fields") or ""))
    except Refusal as exc:
        errors["fields"] = Message(N_("Fields: %(problem)s."), problem=exc)
    if not {"price", "max_qty"} & errors.keys():
        try:
            tiers = parse_tiers(raw.get("tiers") or "", values["price"], values["max_qty"], free)
            values["tiers_json"] = json.dumps(tiers)
        except Refusal as exc:
            errors["tiers"] = Message(N_("Tiers: %(problem)s."), problem=exc)

    image = None
    path = (raw.get("image") or "").strip()
    if upload is not None and getattr(upload, "filename", ""):
        try:
            image = _read_image(upload)
        except Refusal as exc:
            errors["image_file"] = Message(N_("Image: %(problem)s."), problem=exc)
    elif path and (not IMAGE_PATH_RE.match(path) or ".." in path or path.startswith("//")):
        errors["image"] = Message(
            N_("The image path must be a path on this shop, like /uploads/x.png.")
        )
    values["image"] = path

    if errors:
        raise CatalogError(errors)
    return values, warnings, image


def create_product(raw: Mapping, upload=None, actor=None) -> tuple[Product, list[str]]:
    """A new product from the typed form; returns it and the warnings to show staff
    (a price below cost is allowed, it may be a loss leader, but never silently)."""
    with db.atomic():
        values, warnings, image = _clean_product(raw, None, upload)
        if image:
            values["image"] = _store_image(*image)
        values["stock"] = 0 if values["kind"] == "card" else None
        product = Product.create(**values)
        record(
            "product.create",
            target=f"product:{product.id}",
            actor=actor,
            **{k: v for k, v in values.items() if k != "description"},
        )
    return product, warnings


def add_product(raw: Mapping, category_name: str = "", actor=None):
    """A product in a category named rather than chosen (the CLI), the category created when
    missing, both in one transaction: a refused product leaves no stray category behind."""
    with db.atomic():
        if category_name.strip():
            raw = {**raw, "category_id": str(category_named(category_name, actor).id)}
        return create_product(raw, actor=actor)


def update_product(product: Product, raw: Mapping, upload=None, actor=None):
    """Save the edit form; returns the product and warnings. Stock is never set here: it
    moves only with the card keys (import, sale, void)."""
    with db.atomic():
        product = Product.get_by_id(product.id)
        values, warnings, image = _clean_product(raw, product, upload)
        if image:
            values["image"] = _store_image(*image)
        if values["image"] != product.image:
            db.after_commit(functools.partial(_drop_if_unused, product.image))
        if values["kind"] != product.kind:
            values["stock"] = 0 if values["kind"] == "card" else None
        changes = _changes(product, values)
        if changes:
            values["updated_at"] = now()
            Product.update(**values).where(Product.id == product.id).execute()
            if "description" in changes:
                changes["description"] = "changed"
            record("product.update", target=f"product:{product.id}", actor=actor, **changes)
    return Product.get_by_id(product.id), warnings


def set_visible(product: Product, visible: bool, actor=None) -> Product:
    """Hide a product from the shop (or show it again) without touching anything else."""
    with db.atomic():
        Product.update(visible=visible, updated_at=now()).where(Product.id == product.id).execute()
        action = "product.show" if visible else "product.hide"
        record(action, target=f"product:{product.id}", actor=actor)
    return Product.get_by_id(product.id)


# helpers -------------------------------------------------------------------------------------


def _has_history(product: Product) -> bool:
    from shop.inventory.models import CardKey
    from shop.orders.models import Order

    return (
        CardKey.select().where(CardKey.product == product.id).exists()
        or Order.select().where(Order.product == product.id).exists()
    )


def _changes(row, values: dict) -> dict:
    """{column: [old, new]} for the columns `values` changes on `row`."""
    changes = {}
    for key, new in values.items():
        old = getattr(row, f"{key}_id") if key == "category" else getattr(row, key)
        if old != new:
            changes[key] = [old, new]
    return changes


def _one_line(text) -> str:
    return " ".join(str(text or "").split())


def _flag(raw: Mapping, key: str) -> bool:
    return str(raw.get(key) or "").strip().lower() in TRUE


def _int_or_none(text) -> int | None:
    text = str(text or "").strip()
    return int(text) if re.fullmatch(r"-?[0-9]{1,9}", text) else None


def _int_field(raw: Mapping, key: str, low: int, high: int, errors: dict, default: int) -> int:
    text = str(raw.get(key) or "").strip()
    if not text:
        return default
    value = _int_or_none(text)
    if value is None or not low <= value <= high:
        errors[key] = Message(INT_MESSAGES[key], low=low, high=high)
        return default
    return value


def _check_quantity_limits(values: dict, errors: dict) -> None:
    """Each limit on its own is a whole number in range; together the maximum must not be
    below the minimum. Said as that, with both numbers: "must be a whole number from 5 to
    100000" about a 2 sends staff looking for what is wrong with the 2. A maximum left at its
    default is checked too, or a minimum above it would make the product unbuyable."""
    if {"min_qty", "max_qty"} & errors.keys() or values["max_qty"] >= values["min_qty"]:
        return
    errors["max_qty"] = Message(
        N_("The maximum quantity (%(max)d) must be at least the minimum quantity (%(min)d)."),
        max=values["max_qty"],
        min=values["min_qty"],
    )


def _amount(raw: Mapping, key: str, errors: dict, required: bool) -> int:
    text = str(raw.get(key) or "").strip()
    if not text:
        if required:
            errors[key] = Message(AMOUNT_MISSING[key])
        return 0
    try:
        return parse_amount(text, allow_zero=True)
    except AmountError as exc:
        errors[key] = Message(AMOUNT_WRONG[key], problem=exc)
        return 0
