"""Every change to an order, each one service function owning its transaction.

The money moves with the status in the same transaction: paying moves the amount into escrow,
completing splits the escrow (settlement.split), refunding returns it to the payer. A paid
order is delivered right after its payment commits; if the process dies in between, the
worker's `resume_paid` delivers it on restart (the delivery's compare-and-set transition means
it can never be delivered twice).
"""

import json
import re
from datetime import timedelta

from werkzeug.security import check_password_hash, generate_password_hash

from shop import group_commit, ledger, plugins, settings
from shop.catalog.models import Product
from shop.catalog.pricing import unit_price
from shop.clock import now
from shop.crypto import blind_index, normalize_email, normalize_phone
from shop.db import db, insert, raw_one, run
from shop.distribution import commission
from shop.inventory import service as inventory
from shop.inventory.service import SoldOut
from shop.levels import service as levels
from shop.messages import N_, Message, Refusal
from shop.orders import settlement
from shop.orders.models import DeliveryItem, Order
from shop.orders.numbers import new_order_no
from shop.orders.state import StaleOrder, transition
from shop.payments import refunds
from shop.payments.models import GatewayRefund
from shop.payments.refunds import payer_account
from shop.points import service as points
from shop.settings.registry import parse_int

settings.register(
    "orders.reserve_minutes",
    15,
    "Minutes an unpaid order holds its stock before it expires",
    parse_int(1, 1440, N_("minutes")),
)
settings.register(
    "escrow.hours",
    24,
    "Hours after delivery before an order completes by itself and its escrow settles",
    parse_int(0, 24 * 30, N_("hours")),
)

MAX_QUANTITY = 100_000
# the gateway recorded on an order with nothing to pay (a free product's): no gateway took it
FREE_GATEWAY = "free"
EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}$")
PHONE_RE = re.compile(r"^\+?[0-9]{6,15}$")
MIN_QUERY_PASSWORD = 4


class OrderError(Refusal):
    """A refused order operation. `code` is the API error code, `status` the HTTP status;
    `str()` is the English message (API, CLI), `translated()` the one for a page."""

    def __init__(self, message: str, code: str = "bad_request", status: int = 400, **params):
        super().__init__(message, **params)
        self.code = code
        self.status = status


# input -------------------------------------------------------------------------------------


def parse_quantity(product: Product, raw) -> int:
    """An integer within the product's bounds; anything else is refused with the bounds."""
    if isinstance(raw, bool | float):
        raise OrderError(N_("The quantity must be a whole number."), "bad_quantity")
    try:
        quantity = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise OrderError(N_("The quantity must be a whole number."), "bad_quantity") from None
    if not product.min_qty <= quantity <= min(product.max_qty, MAX_QUANTITY):
        raise OrderError(
            N_("The quantity must be between %(min)d and %(max)d."),
            "bad_quantity",
            min=product.min_qty,
            max=product.max_qty,
        )
    return quantity


def clean_fields(product: Product, raw: dict | None) -> dict:
    """The buyer's answers to the product's required fields, each matched to its pattern."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise OrderError(N_("fields must be an object of field name to value."), "bad_fields")
    cleaned = {}
    for spec in product.fields:
        value = str(raw.get(spec["name"], "") or "").strip()
        if not value:
            if spec.get("required", True):
                raise OrderError(
                    N_("%(field)s is required."),
                    "bad_fields",
                    field=spec.get("label", spec["name"]),
                )
            continue
        pattern = spec.get("pattern")
        if len(value) > 200 or (pattern and not re.fullmatch(pattern, value)):
            raise OrderError(
                N_("%(field)s is not valid."), "bad_fields", field=spec.get("label", spec["name"])
            )
        cleaned[spec["name"]] = value
    return cleaned


def clean_contact(raw: str) -> tuple[str, str]:
    """A guest's email or phone → (value, blind index)."""
    value = (raw or "").strip()
    if EMAIL_RE.match(value) and len(value) <= 254:
        return value, blind_index("order.contact", value, normalize_email)
    phone = re.sub(r"[\s()-]", "", value)
    if PHONE_RE.match(phone):
        return phone, blind_index("order.contact", phone, normalize_phone)
    raise OrderError(
        N_("Enter an email address or a phone number to find your order again."), "bad_contact"
    )


def contact_index(raw: str) -> str | None:
    try:
        return clean_contact(raw)[1]
    except OrderError:
        return None


def visible_product(product_id) -> Product:
    try:
        pid = int(product_id)
    except (TypeError, ValueError):
        pid = 0
    product = None
    if 0 < pid < 2**63:  # a BIGINT: larger ids do not exist and would overflow the driver
        product = raw_one(Product, 'SELECT * FROM "product" WHERE "id" = ? AND "visible"', pid)
    if product is None:
        raise OrderError(N_("No such product."), "not_found", 404)
    return product


# placing -----------------------------------------------------------------------------------


def _order_values(
    product: Product, quantity: int, user, fields: dict, points_raw=0, status="pending", **extra
):
    """The new order's columns at the buyer's price, and the points it uses (checked against
    the buyer's balance). Reads only: an API order computes this before it takes the write
    lock. With points, `amount` is what is left to pay in money after them."""
    unit = unit_price(product, quantity, user)
    amount = unit * quantity
    if amount <= 0 and not product.free:
        raise OrderError(N_("This product cannot be sold at no charge."), "bad_price")
    used, value = points.price_points(user, points_raw, amount, product.cost * quantity)
    return dict(
        order_no=new_order_no(),
        user=user.id if user else None,
        product=product.id,
        product_name=product.name,
        kind=product.kind,
        quantity=quantity,
        unit_price=unit,
        amount=amount - value,
        points_used=used,
        points_value=value,
        cost=product.cost * quantity,
        status=status,
        fields=json.dumps(fields, ensure_ascii=False) if fields else None,
        **extra,
    )


def _new_order(product: Product, quantity: int, user, fields: dict, points_raw=0, **extra) -> Order:
    """Insert the pending order; its points leave the buyer's account in this transaction."""
    order = insert(Order, **_order_values(product, quantity, user, fields, points_raw, **extra))
    if order.points_used:
        points.redeem(order, actor=user)
    return order


def place_order(
    product_id,
    quantity,
    *,
    user=None,
    contact: str | None = None,
    query_password: str | None = None,
    fields: dict | None = None,
    gateway: str = "",
    ip: str = "",
    referrer_id: int | None = None,
    points=0,
) -> Order:
    """Create a pending order and reserve its stock until it expires.

    A guest gives a contact and a query password of their choice; both are needed (with the
    order number) to look the order up again. A signed-in buyer may pay part of it with
    `points`. An order with nothing to pay (a free product) is paid as it is placed and
    delivered at once, so no buyer waits on a gateway that cannot take 0. Raises OrderError,
    or SoldOut as OrderError 409, or points.PointsError.
    """
    product = visible_product(product_id)
    qty = parse_quantity(product, quantity)
    cleaned = clean_fields(product, fields)
    extra = {"gateway": gateway, "ip": ip or None, "referrer_id": referrer_id}
    if user is None:
        value, index = clean_contact(contact or "")
        if len(query_password or "") < MIN_QUERY_PASSWORD:
            raise OrderError(
                N_("Choose an order query password of at least %(count)d characters."),
                "bad_query_password",
                count=MIN_QUERY_PASSWORD,
            )
        extra.update(
            contact=value,
            contact_index=index,
            query_password_hash=generate_password_hash(query_password, method="scrypt"),
        )
    minutes = settings.get("orders.reserve_minutes")
    try:
        with db.atomic():
            expires = now() + timedelta(minutes=minutes)
            order = _new_order(product, qty, user, cleaned, points, expires_at=expires, **extra)
            if product.kind == "card":
                inventory.reserve(product.id, qty, order.id, expires)
            transition(order, "pending", new=True, actor=user)
            if not order.amount:
                _pay_free(order, actor=user)
    except SoldOut as exc:
        raise OrderError(_sold_out_message(exc), "sold_out", 409) from None
    return deliver(order.id) if order.status == "paid" else order


def _sold_out_message(exc: SoldOut) -> str:
    if exc.available <= 0:
        return Message(N_("Sold out: this product has no stock left."))
    return Message(N_("Only %(n)d left in stock; lower the quantity."), n=exc.available)


def place_paid_order(
    user,
    product_id,
    quantity,
    fields: dict | None,
    *,
    idem_key: str,
    request_hash: str,
    ip="",
    first=None,
) -> tuple[Order, bool]:
    """An API order: placed, paid from the user's wallet (a free one takes nothing from it)
    and delivered in one transaction.

    The same `idem_key` from the same user returns the first order (created=False) when the
    request is the same, and is refused (409) when it differs. Sold out is 409 and a short
    wallet 402, and either leaves nothing behind. `first` runs first inside the transaction
    (the API records the request's nonce there, so both commit together).

    Everything that only reads (the product, the price, the fields) happens before the
    transaction, so the write lock is held for the writes alone, and on SQLite the writes of
    concurrent API orders share one COMMIT (`group_commit`). The order is inserted paid and
    its keys are sold to it straight from stock (`_deliver(fresh=True)`), so it is written
    once and updated once.
    """
    product = visible_product(product_id)
    qty = parse_quantity(product, quantity)
    if product.kind == "card" and (product.stock or 0) < qty:
        # Sold out already: said before any balance check, and without the write lock (after
        # a flash sale's last key, every request ends here). A retry of the order that took
        # the last keys still gets that order.
        replayed = _replayed_order(user, idem_key, request_hash)
        if replayed is None:
            raise OrderError(
                _sold_out_message(SoldOut(product.id, qty, product.stock or 0)), "sold_out", 409
            )
        return replayed, False
    values = _order_values(
        product,
        qty,
        user,
        clean_fields(product, fields),
        status="paid",
        api_user_id=user.id,
        idem_key=idem_key,
        request_hash=request_hash,
        ip=ip or None,
    )
    values["gateway"] = "wallet" if values["amount"] else FREE_GATEWAY

    def write() -> tuple[Order, bool]:
        if first is not None:
            first()
        order = insert(Order, unless_exists=("api_user_id", "idem_key"), paid_at=now(), **values)
        if order is None:
            return _replayed_order(user, idem_key, request_hash), False
        if order.amount:  # a free order has nothing to take from the wallet (see `_pay_free`)
            wallet = ledger.user_account(user.id, "wallet")
            _move_to_escrow(order, wallet, f"wallet:{order.order_no}")
        return _deliver(order, fresh=True), True

    try:
        return group_commit.run(write)
    except SoldOut as exc:
        raise OrderError(_sold_out_message(exc), "sold_out", 409) from None


def _replayed_order(user, idem_key: str, request_hash: str) -> Order | None:
    """The order an Idempotency-Key already placed (None if it placed none), if asked for
    with the same request."""
    existing = Order.get_or_none((Order.api_user_id == user.id) & (Order.idem_key == idem_key))
    if existing is not None and existing.request_hash != request_hash:
        raise OrderError(
            N_("This Idempotency-Key was used for a different request."),
            "idempotency_conflict",
            409,
        )
    return existing


def _current(order: Order, allowed: tuple[str, ...], refusal: str, code: str) -> Order:
    """The order as stored now, read inside the caller's transaction; refused (409, naming
    its status) unless it is in one of the `allowed` statuses."""
    fresh = Order.get_by_id(order.id)
    if fresh.status not in allowed:
        raise OrderError(refusal, code, 409, state=fresh.status)
    return fresh


# paying ------------------------------------------------------------------------------------


def pay_with_wallet(order: Order, actor=None) -> Order:
    """Pay a pending order from the buyer's wallet, then deliver it."""
    if not order.user_id:
        raise OrderError(N_("Sign in to pay with your balance."), "wallet_needs_account", 403)
    with db.atomic():
        order = _current(
            order, ("pending",), N_("This order is %(state)s, not awaiting payment."), "not_pending"
        )
        _move_to_escrow(
            order, ledger.user_account(order.user_id, "wallet"), f"wallet:{order.order_no}"
        )
        transition(order, "paid", actor=actor, gateway="wallet")
    return deliver(order.id)


def _move_to_escrow(order: Order, source, idem_key: str) -> None:
    """The payment enters escrow, and the referrers' commission on it becomes pending in the
    same transaction: every way of paying comes through here."""
    try:
        ledger.transfer(
            source,
            ledger.system_account("escrow"),
            order.amount,
            "order.pay",
            ref=order.order_no,
            idem_key=idem_key,
        )
    except ledger.InsufficientFunds:
        raise OrderError(
            N_("Your balance is too low for this order."), "insufficient_balance", 402
        ) from None
    commission.on_paid(order)


def _pay_free(order: Order, actor=None) -> None:
    """Pay an order whose total is 0, inside the caller's transaction. Only an explicitly free
    product gets such a total (`_order_values` refuses it otherwise). No money moves, so there
    is no journal (the ledger takes no zero amounts) and no commission on it: its share of
    escrow is its amount, 0, which the escrow audit expects of a paid order."""
    transition(order, "paid", actor=actor, gateway=FREE_GATEWAY)


def credit_gateway_payment(order: Order, gateway: str, txn_id: str, amount: int) -> str:
    """Apply a verified gateway payment to the order, inside the caller's transaction.
    Returns the outcome: paid, reclaimed (late payment found stock), refunded (late, sold
    out), or duplicate (the order was already paid: the money goes back to the payer)."""
    source = ledger.system_account(f"gateway:{gateway}")
    idem = f"pay:{gateway}:{txn_id}"
    if order.status == "pending":
        _move_to_escrow(order, source, idem)
        transition(order, "paid", gateway=gateway)
        return "paid"
    if order.status == "expired":
        _move_to_escrow(order, source, idem)
        try:
            with db.atomic():  # a savepoint: a failed re-claim leaves stock and points untouched
                points.take_again(order)
                if order.kind == "card":
                    inventory.reserve(order.product_id, order.quantity, order.id, None)
        except SoldOut:
            _refund_in_tx(
                order, "The payment arrived after the order expired and the stock was sold out."
            )
            return "refunded"
        except points.PointsError:
            _refund_in_tx(
                order,
                "The payment arrived after the order expired and its points were spent meanwhile.",
            )
            return "refunded"
        transition(order, "paid", gateway=gateway, reason="late payment, stock re-claimed")
        return "reclaimed"
    # paid twice (or after cancellation): the money is the payer's, return it at once
    ledger.transfer(
        source,
        payer_account(order),
        amount,
        "order.duplicate_payment",
        ref=order.order_no,
        idem_key=idem,
    )
    return "duplicate"


# delivering --------------------------------------------------------------------------------


def deliver(order_id: int) -> Order:
    """Hand over a paid order's goods. Safe to call again: only a `paid` order moves."""
    with db.atomic():
        return _deliver(Order.get_by_id(order_id))


def _deliver(order: Order, fresh: bool = False) -> Order:
    """`deliver` inside the caller's transaction, for an order it just read or moved.

    `fresh`: the order was inserted paid by this transaction (an API order). Its birth is
    recorded with the step it takes here, and a card order's keys are still in stock: they
    are sold to it straight away (SoldOut if there are too few), or reserved if it is held.
    """
    if order.status != "paid":
        return order
    reasons = [r for r in plugins.fire("risk_check", order=order) if r]
    if reasons:
        if fresh and order.kind == "card":
            inventory.reserve(order.product_id, order.quantity, order.id)
        transition(order, "held", new=fresh, reason="; ".join(map(str, reasons)))
        return order
    if order.kind == "card":
        if fresh:
            inventory.sell(order.product_id, order.quantity, order.id)
        elif inventory.sell_reserved(order.id, order.quantity) != order.quantity:
            _refund_in_tx(order, "The reserved stock could not be delivered.")
            return order
    else:
        result = plugins.fire("deliver", order=order, product=order.product)
        items = [str(i) for r in result for i in (r if isinstance(r, list) else [r])]
        if not items:
            if fresh:
                transition(order, "paid", new=True)
            return order  # waits in the staff delivery queue
        DeliveryItem.insert_many([{"order": order.id, "secret": s} for s in items]).execute()
    _mark_delivered(order, new=fresh)
    return order


def _mark_delivered(order: Order, actor=None, new: bool = False) -> None:
    hours = settings.get("escrow.hours")
    transition(
        order, "delivered", actor=actor, new=new, settle_after=now() + timedelta(hours=hours)
    )
    if not (new and order.kind == "card"):  # a fresh order's keys were counted as sold
        run(
            'UPDATE "product" SET "sold_count" = "sold_count" + ? WHERE "id" = ?',
            (order.quantity, order.product_id),
        )


def deliver_manually(order: Order, lines: list[str], actor) -> Order:
    """Staff hand over a manual or recharge order (codes, receipts), one item per line."""
    items = [line.strip() for line in lines if line.strip()]
    if order.kind == "card":
        # a card order's goods are its reserved keys; items typed beside them would leave
        # the keys reserved for a delivered order
        raise OrderError(N_("Card orders deliver their card keys, not typed items."), "card_order")
    if not items:
        raise OrderError(N_("Enter what you delivered, one item per line."), "bad_items")
    with db.atomic():
        order = _current(
            order,
            ("paid", "held"),
            N_("This order is %(state)s; only paid orders can be delivered."),
            "not_paid",
        )
        if order.status == "held":
            transition(order, "paid", actor=actor, reason="released by staff")
        DeliveryItem.insert_many([{"order": order.id, "secret": s} for s in items]).execute()
        _mark_delivered(order, actor)
    return order


def release_held(order: Order, actor) -> Order:
    """Staff approve a held order: it goes back to paid and is delivered."""
    with db.atomic():
        order = _current(order, ("held",), N_("This order is %(state)s, not held."), "not_held")
        transition(order, "paid", actor=actor, reason="approved by staff")
    if order.kind == "card":
        with db.atomic():
            order = Order.get_by_id(order.id)
            inventory.sell_reserved(order.id, order.quantity)
            _mark_delivered(order, actor)
        return order
    return deliver(order.id)


def delivered_items(order: Order) -> list[str]:
    if order.status not in ("delivered", "completed", "disputed"):
        return []
    if order.kind == "card":
        return inventory.order_secrets(order.id)
    return [i.secret for i in order.items.order_by(DeliveryItem.id)]


# completing --------------------------------------------------------------------------------


def complete(order: Order, actor=None, reason: str = "") -> Order:
    """Confirm receipt (by the buyer, staff, or the escrow timer) and settle the escrow.

    The order is claimed first (the compare-and-set transition), so of two settlements racing
    the second waits on the order row and then fails before it reads any balance."""
    with db.atomic():
        order = _current(
            order,
            ("delivered",),
            N_("This order is %(state)s; only delivered orders complete."),
            "not_delivered",
        )
        transition(order, "completed", actor=actor, reason=reason)
        entries = settlement.split(order) if order.amount else []
        if entries:
            ledger.post(
                entries, "order.settle", ref=order.order_no, idem_key=f"settle:{order.order_no}"
            )
        commission.on_settled(order)
        if order.user_id:
            levels.upgrade(order.user_id)
    return order


def _due(status: str, condition, limit: int) -> list[Order]:
    """Orders in `status` meeting `condition`, oldest first, for the periodic jobs (ids only:
    each job re-reads its order inside its own transaction)."""
    query = Order.select(Order.id).where((Order.status == status) & condition)
    return list(query.order_by(Order.id).limit(limit))


def complete_due(limit: int = 500) -> int:
    """Auto-confirm delivered orders whose escrow window has passed (a periodic job)."""
    done = 0
    for row in _due("delivered", Order.settle_after <= now(), limit):
        try:
            complete(row, reason="confirmed automatically after the escrow window")
            done += 1
        except (OrderError, StaleOrder):
            continue
    return done


# refunding ---------------------------------------------------------------------------------


def refund(order: Order, reason: str, actor=None) -> Order:
    """Staff refund a whole order with a reason the customer sees, also after it completed:
    its settlement and commission are then taken back first. When the money goes back
    through the gateway it was paid with, the gateway is asked once the refund commits."""
    reason = (reason or "").strip()
    if not reason:
        raise OrderError(N_("Give the customer a reason for the refund."), "reason_required")
    with db.atomic():
        order = _current(
            order,
            ("paid", "held", "delivered", "disputed", "completed"),
            N_("A %(state)s order cannot be refunded."),
            "not_refundable",
        )
        sending = _refund_in_tx(order, reason, actor)
        if sending is not None:
            refunds.send_after_commit(sending)
    return order


def _refund_in_tx(order: Order, reason: str, actor=None) -> GatewayRefund | None:
    """Refund from escrow, after everything that took the order's money out of escrow put it
    back: a settlement (taken back entry by entry) and commission (pending reversed, or
    available clawed back). The order is claimed first, as in `complete`.

    The escrow goes to the payer, or on its way back through the order's gateway
    (`refunds.return_escrow`); the GatewayRefund to send is returned. Only a staff refund
    asks the gateway at once: the automatic ones (a late payment, an undeliverable order)
    run inside a gateway's own notify or a delivery, so the worker sends those."""
    settled = order.status == "completed"
    transition(order, "refunded", actor=actor, reason=reason)
    if order.amount:
        unsettle = settlement.unsplit(order) if settled else []
        if unsettle:
            ledger.post(
                unsettle,
                "order.unsettle",
                ref=order.order_no,
                idem_key=f"unsettle:{order.order_no}",
                actor=actor,
            )
        commission.on_refund(order, actor)
        sending = refunds.return_escrow(order, actor)
    else:
        sending = None
    points.give_back(order, actor)
    if order.kind == "card":
        inventory.void_order_keys(order.id)
        inventory.release(order.id, order.product_id)
    return sending


# expiring ----------------------------------------------------------------------------------


def cancel(order: Order, actor=None) -> Order:
    """The buyer gives up an unpaid order; its stock goes back at once."""
    with db.atomic():
        order = _current(
            order,
            ("pending",),
            N_("This order is %(state)s; only unpaid orders can be cancelled."),
            "not_pending",
        )
        points.give_back(order, actor)
        if order.kind == "card":
            inventory.release(order.id, order.product_id)
        transition(order, "cancelled", actor=actor, reason="cancelled by the buyer")
    return order


def expire_due(limit: int = 500) -> int:
    """Expire unpaid orders past their reservation and release their stock (periodic job)."""
    done = 0
    for row in _due("pending", Order.expires_at <= now(), limit):
        try:
            with db.atomic():
                order = Order.get_by_id(row.id)
                if order.status != "pending":
                    continue
                points.give_back(order)
                if order.kind == "card":
                    inventory.release(order.id, order.product_id)
                transition(order, "expired", reason="not paid in time")
            done += 1
        except StaleOrder:
            continue
    return done


def resume_paid(older_than_seconds: int = 0, limit: int = 500) -> int:
    """Deliver paid orders left undelivered (a crash between payment and delivery). Racing a
    delivery still in progress is harmless: `deliver` moves only a `paid` order, once."""
    cutoff = now() - timedelta(seconds=older_than_seconds)
    done = 0
    for row in _due("paid", (Order.paid_at <= cutoff) & (Order.kind == "card"), limit):
        if deliver(row.id).status != "paid":
            done += 1
    return done


# finding -----------------------------------------------------------------------------------


def get_for_user(order_no: str, user) -> Order | None:
    """The order if `user` owns it (or is staff); None otherwise, never a hint it exists."""
    order = Order.get_or_none(Order.order_no == (order_no or "").strip())
    if order is None or user is None:
        return None
    if order.user_id == user.id or getattr(user, "is_staff", False):
        return order
    return None


def awaiting_payment(user, limit: int = 5) -> list[Order]:
    """The user's orders still holding their stock for payment, newest first. The wallet page
    lists them, so a buyer who tops up because the balance fell short goes back to pay that
    order instead of placing (and reserving stock for) another."""
    return list(
        Order.select()
        .where((Order.user == user.id) & (Order.status == "pending") & (Order.expires_at > now()))
        .order_by(Order.id.desc())
        .limit(limit)
    )


def lookup_guest(order_no: str, contact: str, query_password: str) -> Order | None:
    """A guest's order, only with the number, the contact and the query password all right.
    Every wrong answer returns None the same way (the caller throttles attempts)."""
    order = Order.get_or_none(Order.order_no == (order_no or "").strip())
    index = contact_index(contact)
    if order is None or not order.query_password_hash or index != order.contact_index:
        check_password_hash(_DUMMY, query_password or "")  # same work either way
        return None
    if not check_password_hash(order.query_password_hash, query_password or ""):
        return None
    return order


_DUMMY = generate_password_hash("kashop-dummy-password", method="scrypt")
