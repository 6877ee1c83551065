"""Orders as staff see them: finding one, the queues that wait for a person, and revealing
an order's secrets.

Screens show contact details, recharge accounts and delivered keys masked (DESIGN.md
invariant 7); `reveal` is the one way staff see them in full, and it leaves an audit record
naming who looked, before anything is shown.
"""

import json
from datetime import datetime

from peewee import Case, fn

from shop.accounts.models import User
from shop.audit import record
from shop.crypto import mask, mask_email, mask_phone, mask_secret
from shop.orders import service as orders
from shop.orders.models import Order
from shop.orders.state import TRANSITIONS

STATUSES = tuple(s for s in TRANSITIONS if s)
# money taken and not given back: what counts as a sale
SOLD_STATUSES = ("paid", "held", "delivered", "completed", "disputed")


def search(status: str = "", number: str = ""):
    """Orders newest first, optionally of one status and/or whose number contains `number`."""
    query = Order.select().order_by(Order.id.desc())
    if status in STATUSES:
        query = query.where(Order.status == status)
    number = number.strip().upper()
    if number:
        query = query.where(Order.order_no.contains(number))
    return query


def queues(since: datetime) -> dict[str, int]:
    """Paid orders waiting for delivery, held orders waiting for review, and the orders and
    sales since `since`: two grouped queries over indexed columns."""
    waiting = dict(
        Order.select(Order.status, fn.COUNT(Order.id))
        .where(Order.status.in_(("paid", "held")))
        .group_by(Order.status)
        .tuples()
    )
    sold = Case(None, [(Order.status.in_(SOLD_STATUSES), Order.amount)], 0)
    count, sales = (
        Order.select(fn.COUNT(Order.id), fn.COALESCE(fn.SUM(sold), 0))
        .where(Order.created_at >= since)
        .tuples()
        .get()
    )
    return {
        "paid": waiting.get("paid", 0),
        "held": waiting.get("held", 0),
        "orders_since": count,
        "sales_since": int(sales),
    }


def shown(order: Order) -> dict:
    """The order's contact, recharge fields and delivered items, masked for the screen."""
    full = _secrets(order)
    if order.user_id:
        user = User.get_or_none(User.id == order.user_id)
        contact = mask_email(user.email) if user else ""
    else:
        contact = (
            mask_email(full["contact"]) if "@" in full["contact"] else mask_phone(full["contact"])
        )
    return {
        "contact": contact,
        "fields": {label: mask(value) for label, value in full["fields"].items()},
        "delivered": [mask_secret(item) for item in full["delivered"]],
    }


def reveal(order: Order, actor) -> dict:
    """The same in full; the audit record is written first."""
    record("order.reveal", target=f"order:{order.order_no}", actor=actor)
    return _secrets(order)


def _secrets(order: Order) -> dict:
    contact = order.contact or ""
    if order.user_id and not contact:
        user = User.get_or_none(User.id == order.user_id)
        contact = user.email if user else ""
    labels = {f["name"]: f.get("label") or f["name"] for f in order.product.fields}
    answers = json.loads(order.fields or "{}")
    return {
        "contact": contact,
        "fields": {labels.get(name, name): value for name, value in answers.items()},
        "delivered": orders.delivered_items(order),
    }
