"""What the API answers: the shop's products, orders and balances as JSON-ready dicts, and the
strict reading of an order request. The rules themselves (price, stock, payment, delivery)
stay in the catalog and orders areas; this module only translates."""

import hashlib
import json

from shop import ledger
from shop.catalog.models import Product
from shop.catalog.pricing import unit_price
from shop.db import db
from shop.orders import service as orders
from shop.orders.models import Order
from shop.orders.service import OrderError
from shop.orders.state import StaleOrder

CURRENCY = "CNY"
BALANCE_KINDS = ("wallet", "commission_pending", "commission_available", "points")
MAX_IDEMPOTENCY_KEY = 128


def product_json(product: Product, user) -> dict:
    """A product as the key's user sees it: their unit price for one, and the available card
    keys (null for kinds whose stock is not counted, i.e. unlimited)."""
    return {
        "id": product.id,
        "name": product.name,
        "kind": product.kind,
        "price": unit_price(product, 1, user),
        "currency": CURRENCY,
        "stock": (product.stock or 0) if product.kind == "card" else None,
        "min_quantity": product.min_qty,
        "max_quantity": min(product.max_qty, orders.MAX_QUANTITY),
        "fields": [
            {
                "name": spec["name"],
                "label": spec.get("label", spec["name"]),
                "pattern": spec.get("pattern"),
                "required": spec.get("required", True),
            }
            for spec in product.fields
        ],
    }


def catalog(user) -> list[dict]:
    products = (
        Product.select()
        .where(Product.visible == True)  # noqa: E712
        .order_by(Product.sort_order, Product.id)
    )
    return [product_json(p, user) for p in products]


def product(user, product_id: int) -> dict:
    return product_json(orders.visible_product(product_id), user)


def order_json(order: Order) -> dict:
    return {
        "order_no": order.order_no,
        "status": order.status,
        "product_id": order.product_id,
        "quantity": order.quantity,
        "amount": order.amount,
        "currency": CURRENCY,
        "items": [{"secret": s} for s in orders.delivered_items(order)],
        "created_at": order.created_at.replace(microsecond=0).isoformat() + "Z",
    }


def own_order(user, order_no: str) -> Order:
    """The key owner's order; someone else's is as unknown as one that does not exist (staff
    keys included: the API acts as a buyer)."""
    order = Order.get_or_none((Order.order_no == order_no) & (Order.user == user.id))
    if order is None:
        raise OrderError("No such order.", "not_found", 404)
    return order


def parse_order_request(body: bytes) -> tuple[int, int, dict, str]:
    """(product_id, quantity, fields, request_hash) from a POST /orders body, refusing
    anything that is not exactly the documented types. Other members (a client's `price`)
    are ignored; the hash is over the whole body in canonical form, so reusing an
    Idempotency-Key with any different body is a conflict rather than a silent replay."""
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise OrderError("The body must be a JSON object.", "bad_json") from None
    if not isinstance(payload, dict):
        raise OrderError("The body must be a JSON object.", "bad_json")
    product_id, quantity = payload.get("product_id"), payload.get("quantity")
    if type(product_id) is not int or product_id <= 0:
        raise OrderError("product_id must be a positive integer.", "bad_product_id")
    if type(quantity) is not int:
        raise OrderError("quantity must be a whole number (a JSON integer).", "bad_quantity")
    fields = payload.get("fields") or {}
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise OrderError("fields must be an object of field name to string.", "bad_fields")
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return product_id, quantity, fields, hashlib.sha256(canonical.encode()).hexdigest()


def check_idempotency_key(value: str | None) -> str:
    if not value:
        raise OrderError(
            "The Idempotency-Key header is required: any unique string per order.",
            "idempotency_key_required",
        )
    if len(value) > MAX_IDEMPOTENCY_KEY or not value.isprintable() or not value.isascii():
        raise OrderError(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters.",
            "bad_idempotency_key",
        )
    return value


def place_order(user, body: bytes, idem_key: str | None, ip: str, accept) -> tuple[dict, bool]:
    """Place (or replay) a wallet-paid order; returns (order JSON, created). `accept` records
    the request's nonce in the order's transaction; the JSON is built after it commits."""
    key = check_idempotency_key(idem_key)
    product_id, quantity, fields, request_hash = parse_order_request(body)
    order, created = orders.place_paid_order(
        user,
        product_id,
        quantity,
        fields,
        idem_key=key,
        request_hash=request_hash,
        ip=ip,
        first=accept,
    )
    return order_json(order), created


def confirm(user, order_no: str, accept) -> dict:
    """Confirm receipt: the order completes and its escrow settles (409 unless delivered,
    also for the loser of two confirmations racing)."""
    try:
        with db.atomic():
            accept()
            order = orders.complete(own_order(user, order_no), actor=user)
        return order_json(order)
    except StaleOrder:
        raise OrderError(
            "This order changed meanwhile; fetch it again.", "not_delivered", 409
        ) from None


def balances(user) -> dict:
    return {kind: ledger.balance(ledger.user_account(user.id, kind)) for kind in BALANCE_KINDS}
