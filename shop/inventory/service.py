"""Moving card keys between states, always together with the product's stock count.

States: available → reserved (by a pending order, with an expiry) → sold (to exactly that
order) or back to available; any unsold key can be voided by staff, and a refunded order's
sold keys are voided. Every function runs inside the caller's transaction, so the key states,
the stock column and the order change commit together or not at all.
"""

from peewee import fn

from shop import plugins
from shop.audit import record
from shop.catalog.models import Product
from shop.clock import now
from shop.crypto import blind_index, decrypt
from shop.db import db, is_postgres, run
from shop.inventory.models import CardKey
from shop.messages import N_, Message, Refusal

MAX_KEY_LENGTH = 512


class SoldOut(Exception):
    """Not enough available keys for the quantity asked."""

    def __init__(self, product_id: int, wanted: int, available: int):
        super().__init__(f"only {available} left, {wanted} wanted")
        self.product_id = product_id
        self.wanted = wanted
        self.available = available


class InventoryError(Refusal):
    """A refused inventory operation, with a message for staff."""


def key_index(product_id: int, secret: str) -> str:
    return blind_index(f"cardkey.{product_id}", secret)


def import_keys(product: Product, lines, actor=None, batch: str = "") -> dict:
    """Add keys, one per line; blank lines skipped; duplicates (within the paste and against
    the product's existing keys) refused and counted. Returns {"imported", "duplicates"}."""
    if product.kind != "card":
        raise InventoryError(N_("only card products hold card keys"))
    seen: dict[str, str] = {}
    too_long = 0
    for raw in lines:
        secret = raw.strip()
        if not secret:
            continue
        if len(secret) > MAX_KEY_LENGTH:
            too_long += 1
            continue
        seen.setdefault(key_index(product.id, secret), secret)
    total = sum(1 for raw in lines if raw.strip()) - too_long
    batch = batch or now().strftime("%Y%m%d%H%M%S")
    with db.atomic():
        existing = set()
        indexes = list(seen)
        for start in range(0, len(indexes), 500):
            chunk = indexes[start : start + 500]
            existing.update(
                k.secret_index
                for k in CardKey.select(CardKey.secret_index).where(
                    (CardKey.product == product.id) & CardKey.secret_index.in_(chunk)
                )
            )
        rows = [
            {"product": product.id, "secret": secret, "secret_index": idx, "batch": batch}
            for idx, secret in seen.items()
            if idx not in existing
        ]
        for start in range(0, len(rows), 200):
            CardKey.insert_many(rows[start : start + 200]).execute()
        if rows:
            Product.update(stock=fn.COALESCE(Product.stock, 0) + len(rows)).where(
                Product.id == product.id
            ).execute()
        record(
            "keys.import",
            target=f"product:{product.id}",
            actor=actor,
            imported=len(rows),
            duplicates=total - len(rows),
        )
    return {"imported": len(rows), "duplicates": total - len(rows), "too_long": too_long}


def import_warnings(result: dict) -> list[Message]:
    """What staff must be told about an import's result beyond its counts: lines skipped for
    being too long are not duplicates, and must not vanish without a word. One list for the
    admin page and the CLI, so both say the same."""
    if not result["too_long"]:
        return []
    return [
        Message(
            N_("Too long to be keys (over %(max)d characters), skipped: %(n)d."),
            max=MAX_KEY_LENGTH,
            n=result["too_long"],
        )
    ]


def reserve(product_id: int, quantity: int, order_id: int, until=None) -> None:
    """Reserve `quantity` available keys of the product for the order, or raise SoldOut.
    `until` is the reservation's expiry (None: held for an order already paid)."""
    _take(product_id, quantity, order_id, ("reserved", until, None))


def sell(product_id: int, quantity: int, order_id: int) -> None:
    """Sell `quantity` available keys straight to a paid order that is delivered in the same
    transaction (an API order), or raise SoldOut: two statements where reserving and then
    selling the reserved keys take four, inside the write lock every buyer queues for."""
    _take(product_id, quantity, order_id, ("sold", None, now()), sold=True)


def _take(product_id: int, quantity: int, order_id: int, new_state: tuple, sold=False) -> None:
    """Move `quantity` available keys to `new_state` (state, reserved_until, sold_at) for the
    order, and the product's stock (and sold count) with them.

    The stock column is decremented with a guard (`stock >= quantity`) first: on SQLite the
    write lock is already ours (BEGIN IMMEDIATE), on PostgreSQL the row lock on the product
    serialises buyers of the same product, so the keys picked next cannot be raced. Fewer
    keys than the stock promised means the two disagree: the sale is refused, not oversold.
    """
    row = run(
        'UPDATE "product" SET "stock" = "stock" - ?, "sold_count" = "sold_count" + ? '
        'WHERE "id" = ? AND "stock" >= ? RETURNING "stock", "low_stock_threshold", "name"',
        (quantity, quantity if sold else 0, product_id, quantity),
    ).fetchone()
    if row is None:
        left = Product.select(Product.stock).where(Product.id == product_id).scalar() or 0
        raise SoldOut(product_id, quantity, left)
    pick = (
        'SELECT "id" FROM "card_key" WHERE "product_id" = ? AND "state" = ? ORDER BY "id" LIMIT ?'
    )
    if is_postgres():
        # ARRAY() runs the pick once; PostgreSQL may run an IN (...) subquery per row tried,
        # taking a fresh LIMIT of keys each time
        keys = f'"id" = ANY(ARRAY({pick} FOR UPDATE SKIP LOCKED))'
    else:
        keys = f'"id" IN ({pick})'
    moved = run(
        'UPDATE "card_key" SET "state" = ?, "reserved_until" = ?, "sold_at" = ?, "order_id" = ? '
        f'WHERE {keys} AND "state" = ?',
        (*new_state, order_id, product_id, "available", quantity, "available"),
    ).rowcount
    if moved != quantity:
        raise SoldOut(product_id, quantity, moved)
    _notify_low_stock(product_id, row, quantity)


def _notify_low_stock(product_id: int, row: tuple, taken: int) -> None:
    """Tell plugins (`product.low_stock`) when taking `taken` keys out of stock left it at
    or below the product's low-stock threshold. `row` is (stock after, threshold, name).

    Only the change that crosses the threshold tells, so staff hear it once and not at every
    sale below it. Every path that lowers available stock (a reservation, a sale, a void)
    comes through here; a threshold of 0 means staff asked for no notice."""
    stock, threshold, name = row
    if threshold and stock <= threshold < stock + taken:
        plugins.notify(event="product.low_stock", product_id=product_id, name=name, stock=stock)


def sell_reserved(order_id: int, quantity: int) -> int:
    """Turn the order's reserved keys into sold ones; returns how many moved."""
    return run(
        'UPDATE "card_key" SET "state" = ?, "sold_at" = ?, "reserved_until" = NULL '
        'WHERE "order_id" = ? AND "state" = ?',
        ("sold", now(), order_id, "reserved"),
    ).rowcount


def release(order_id: int, product_id: int) -> int:
    """Give an order's reserved keys back to stock; returns how many."""
    released = (
        CardKey.update(state="available", order_id=None, reserved_until=None)
        .where((CardKey.order_id == order_id) & (CardKey.state == "reserved"))
        .execute()
    )
    if released:
        Product.update(stock=Product.stock + released).where(Product.id == product_id).execute()
    return released


def void_order_keys(order_id: int) -> int:
    """Void the keys a refunded order was sold: they were seen and must never be sold again."""
    return (
        CardKey.update(state="void")
        .where((CardKey.order_id == order_id) & (CardKey.state == "sold"))
        .execute()
    )


def void_key(key_id: int, actor=None) -> CardKey:
    """Staff void an available key (e.g. reported invalid by the supplier)."""
    with db.atomic():
        key = CardKey.get_or_none(CardKey.id == key_id)
        if key is None:
            raise InventoryError(N_("no card key %(id)s"), id=key_id)
        if key.state != "available":
            raise InventoryError(
                N_("key %(id)s is %(state)s; only available keys can be voided"),
                id=key_id,
                state=key.state,
            )
        changed = (
            CardKey.update(state="void")
            .where((CardKey.id == key_id) & (CardKey.state == "available"))
            .execute()
        )
        if changed:
            row = run(
                'UPDATE "product" SET "stock" = "stock" - 1 WHERE "id" = ? '
                'RETURNING "stock", "low_stock_threshold", "name"',
                (key.product_id,),
            ).fetchone()
            _notify_low_stock(key.product_id, row, 1)
        record("keys.void", target=f"key:{key_id}", actor=actor, product=key.product_id)
    key.state = "void"
    return key


def export_unsold(product: Product, actor=None) -> list[str]:
    """The plaintext of every available key, for staff moving stock elsewhere. Audited."""
    keys = (
        CardKey.select()
        .where((CardKey.product == product.id) & (CardKey.state == "available"))
        .order_by(CardKey.id)
    )
    secrets = [k.secret for k in keys]
    record("keys.export", target=f"product:{product.id}", actor=actor, count=len(secrets))
    return secrets


def order_secrets(order_id: int) -> list[str]:
    rows = run(
        'SELECT "secret" FROM "card_key" WHERE "order_id" = ? AND "state" = ? ORDER BY "id"',
        (order_id, "sold"),
    )
    return [decrypt("cardkey.secret", token) for (token,) in rows.fetchall()]


def counts(product_id: int) -> dict[str, int]:
    rows = (
        CardKey.select(CardKey.state, fn.COUNT(CardKey.id).alias("n"))
        .where(CardKey.product == product_id)
        .group_by(CardKey.state)
    )
    result = dict.fromkeys(("available", "reserved", "sold", "void"), 0)
    result.update({r.state: r.n for r in rows})
    return result
