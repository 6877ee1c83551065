"""Audit rules for card keys (DESIGN.md invariant 3), run by `shop audit` on a live database.

Each rule is one or two set-based statements (a filtered scan, or GROUP BY joined to the
orders) rather than a loop over keys, so it stays quick on millions of keys and each
statement reads one consistent snapshot while the shop keeps selling. Each reports at most
`limit` problems.
"""

from peewee import JOIN, fn

from shop.catalog.models import Product
from shop.inventory.models import STATES, CardKey
from shop.orders.models import Order

HOLDING = ("pending", "paid", "held")  # orders whose keys are reserved, not yet sold
DELIVERED = ("delivered", "completed", "disputed")  # orders whose keys are sold


def key_states(limit: int = 100) -> list[str]:
    """Every key is in exactly one known state and its columns agree with it: an available
    key belongs to no order, a reserved or sold key to one, a sold key has its sale time."""
    bad = (
        CardKey.state.not_in(STATES)
        | ((CardKey.state == "available") & CardKey.order_id.is_null(False))
        | (CardKey.state.in_(("reserved", "sold")) & CardKey.order_id.is_null())
        | ((CardKey.state == "sold") & CardKey.sold_at.is_null())
    )
    rows = (
        CardKey.select(CardKey.id, CardKey.product, CardKey.state, CardKey.order_id)
        .where(bad)
        .order_by(CardKey.id)
        .limit(limit)
        .tuples()
    )
    return [
        f"card key {key} of product {product} is {state!r} with order {order}"
        for key, product, state, order in rows
    ]


def reserved_keys(limit: int = 100) -> list[str]:
    """A reserved key is held by a pending, paid or held order of the same product, and
    every such card order holds exactly its quantity of reserved keys."""
    return _held_by("reserved", HOLDING, limit)


def sold_keys(limit: int = 100) -> list[str]:
    """A sold key belongs to a delivered, completed or disputed order of the same product,
    and every such card order holds exactly its quantity of sold keys: none lost, none
    handed to a second order."""
    return _held_by("sold", DELIVERED, limit)


def _held_by(state: str, order_statuses: tuple, limit: int) -> list[str]:
    strays = (
        CardKey.select(CardKey.id, CardKey.order_id, Order.status)
        .join(Order, JOIN.LEFT_OUTER, on=(Order.id == CardKey.order_id))
        .where(
            (CardKey.state == state)
            & (
                Order.id.is_null()
                | Order.status.not_in(order_statuses)
                | (Order.product != CardKey.product)
            )
        )
        .order_by(CardKey.id)
        .limit(limit)
        .tuples()
    )
    problems = [
        f"{state} card key {key} belongs to order id {order} which is "
        + (f"{status} or of another product" if status else "missing")
        for key, order, status in strays
    ]
    held = (
        CardKey.select(CardKey.order_id, fn.COUNT(CardKey.id).alias("n"))
        .where(CardKey.state == state)
        .group_by(CardKey.order_id)
        .alias("held")
    )
    count = fn.COALESCE(held.c.n, 0)
    short = (
        Order.select(Order.order_no, Order.status, Order.quantity, count)
        .join(held, JOIN.LEFT_OUTER, on=(held.c.order_id == Order.id))
        .where(Order.status.in_(order_statuses) & (Order.kind == "card"))
        .where(count != Order.quantity)
        .order_by(Order.id)
        .limit(limit)
        .tuples()
    )
    problems += [
        f"{status} order {order_no} of {quantity} holds {n} {state} keys"
        for order_no, status, quantity, n in short
    ]
    return problems


def keys_unique(limit: int = 100) -> list[str]:
    """No secret twice in one product. The unique index promises it; this proves the data
    keeps the promise (a restore into a schema without the index would not), since one
    secret stored twice can be sold to two orders."""
    rows = (
        CardKey.select(CardKey.product, fn.COUNT(CardKey.id))
        .group_by(CardKey.product, CardKey.secret_index)
        .having(fn.COUNT(CardKey.id) > 1)
        .limit(limit)
        .tuples()
    )
    return [f"product {product} holds one key {n} times" for product, n in rows]


def stock_matches_keys(limit: int = 100) -> list[str]:
    """A card product's stock column (what customers see) equals its available keys."""
    available = (
        CardKey.select(CardKey.product.alias("product_id"), fn.COUNT(CardKey.id).alias("n"))
        .where(CardKey.state == "available")
        .group_by(CardKey.product)
        .alias("available")
    )
    count = fn.COALESCE(available.c.n, 0)
    rows = (
        Product.select(Product.id, Product.name, Product.stock, count)
        .join(available, JOIN.LEFT_OUTER, on=(available.c.product_id == Product.id))
        .where((Product.kind == "card") & (Product.stock.is_null() | (Product.stock != count)))
        .order_by(Product.id)
        .limit(limit)
        .tuples()
    )
    return [
        f"product {pid} ({name}) shows stock {stock} but has {n} available keys"
        for pid, name, stock, n in rows
    ]
