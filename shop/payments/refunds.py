"""Refunds that go back through the payment gateway an order was paid with.

A refunded order's escrow goes back where it came from. Paid from the wallet, or through a
gateway that cannot refund (or is disabled): at once, inside the refund's transaction, to the
buyer's wallet, or for a guest to `refunds_payable`, the queue staff pay out by hand. Paid
through an enabled gateway that can refund: to the ledger account
`refunds_in_flight:<gateway>`, with a `GatewayRefund` row saying what to send; the gateway is
called only after that transaction commits, because a remote call can hang inside the write
lock, and a rolled-back transaction cannot take back money a gateway has already sent.

    pending ── the gateway accepts ──▶ sent       refunds_in_flight:<gw> → gateway:<gw>
       │ each failure: attempts + 1, next try after a growing wait (1, 2, 4 ... minutes)
       ▼ after `refunds.max_attempts` failures
    failed ── staff: try again (one attempt) ──▶ sent
       └───── staff: reroute (also from pending) ──▶ rerouted
                                        refunds_in_flight:<gw> → wallet / refunds_payable

Sent means the money left the shop through the gateway it came in by: `gateway:<gw>`, which
went negative by each payment it brought in, comes back up by each refund it took out.

Exactly once. The row commits with the refund, so a crash before the gateway is called loses
nothing: the worker's `send_due` finds it. Every attempt first claims the row (a
compare-and-set UPDATE that also sets `claimed_until`), so two workers, or staff racing a
worker, never call the gateway together, and staff cannot reroute a refund while a call is
under way. The gateway is always given the same `refund_no`, so a retry after a crash or a
timeout is the same refund to it, never a second one. Recording success is a compare-and-set
from pending/failed to sent, and the ledger move has an idempotency key.
"""

import logging
import secrets
from datetime import timedelta

from peewee import Case

from shop import faults, ledger, plugins, settings
from shop.audit import record
from shop.clock import now
from shop.db import db
from shop.messages import N_, Refusal
from shop.orders.models import Order
from shop.payments.gateway import Gateway, Refundable, RefundFailed
from shop.payments.models import IN_FLIGHT, GatewayRefund, Payment
from shop.settings.registry import parse_int

settings.register(
    "refunds.max_attempts",
    8,
    N_(
        "Times a refund is tried through its payment gateway before it is marked failed "
        "for staff to decide"
    ),
    parse_int(1, 50),
)

CLAIM_SECONDS = 600  # an attempt's claim outlives any gateway's own timeout
FIRST_WAIT_SECONDS = 60
LONGEST_WAIT_SECONDS = 6 * 3600
ERROR_CHARS = 500
log = logging.getLogger(__name__)


class RefundError(Refusal):
    """A refused staff action on a gateway refund; `status` is the HTTP status."""

    def __init__(self, message: str, code: str = "bad_request", status: int = 400, **params):
        super().__init__(message, **params)
        self.code = code
        self.status = status


# where the money goes -----------------------------------------------------------------------


def payer_account(order: Order):
    """Where a refund of this order goes when no gateway takes it back: the buyer's wallet, or
    the guest refund queue."""
    if order.user_id:
        return ledger.user_account(order.user_id, "wallet")
    return ledger.system_account("refunds_payable")


def in_flight_account(gateway: str):
    return ledger.system_account(f"refunds_in_flight:{gateway}")


def refunding_gateway(name: str) -> Gateway | None:
    """The enabled gateway called `name`, if it can refund now."""
    for gateway in plugins.collect("payment_gateways"):
        if gateway.name == name and gateway.can_refund:
            return gateway
    return None


def gateway_title(name: str) -> str:
    """What customers know the gateway as: its title while it is enabled, else its name."""
    for gateway in plugins.collect("payment_gateways"):
        if gateway.name == name:
            return gateway.title
    return name


def gateway_payment(order: Order) -> Payment | None:
    """The gateway payment that paid the order (None for wallet and API orders). A payment
    that arrived for an order already paid is a duplicate and went back on arrival."""
    paid = (Payment.ref == order.order_no) & (Payment.outcome != "duplicate")
    return Payment.select().where(paid).order_by(Payment.id).first()


def return_escrow(order: Order, actor=None) -> GatewayRefund | None:
    """Move a refunded order's escrow to where it goes back, inside the caller's transaction.
    Returns the GatewayRefund to send when a gateway takes it back, else None: the money is
    then already with the payer."""
    payment = gateway_payment(order)
    gateway = refunding_gateway(payment.gateway) if payment else None
    ledger.transfer(
        ledger.system_account("escrow"),
        in_flight_account(gateway.name) if gateway else payer_account(order),
        order.amount,
        "order.refund",
        ref=order.order_no,
        idem_key=f"refund:{order.order_no}",
        actor=actor,
    )
    if gateway is None:
        return None
    return GatewayRefund.create(
        order=order.id,
        refund_no=f"R{order.order_no}",
        gateway=gateway.name,
        txn_id=payment.txn_id,
        amount=order.amount,
    )


def send_after_commit(refund: GatewayRefund) -> None:
    """Try the gateway once as soon as the refund commits; the worker retries what fails.
    Never raises: the refund is committed whatever the gateway does."""

    def send():
        faults.point("refund.committed")  # committed, gateway not asked yet: send_due's case
        try:
            attempt(refund.id)
        except Exception:
            log.exception("refund %s: the first attempt failed to run", refund.refund_no)

    db.after_commit(send)


# attempts ----------------------------------------------------------------------------------


def attempt(refund_id: int, staff: bool = False, actor=None) -> GatewayRefund | None:
    """Claim the refund, ask its gateway outside any transaction, record the answer. Returns
    the refund as it stands after, or None when it could not be claimed: another attempt
    holds it, it is not due yet, or it is no longer in flight.

    The worker takes pending refunds that are due; `staff` (with the `actor` for the audit
    log, None from the CLI) take pending or failed ones at once, and a failed one stays
    failed if this attempt fails too."""
    token = secrets.token_hex(8)
    at = now()
    wanted = GatewayRefund.status.in_(IN_FLIGHT) if staff else _due(at)
    with db.atomic():
        claimed = (
            GatewayRefund.update(
                attempts=GatewayRefund.attempts + 1,
                claim=token,
                claimed_until=at + timedelta(seconds=CLAIM_SECONDS),
                updated_at=at,
            )
            .where((GatewayRefund.id == refund_id) & wanted & _unclaimed(at))
            .execute()
        )
        refund = GatewayRefund.get_by_id(refund_id)
        if claimed and staff:
            record("refund.retry", target=_target(refund), actor=actor, attempt=refund.attempts)
    if not claimed:
        return None
    try:
        gateway = refunding_gateway(refund.gateway)
        if gateway is None:
            raise RefundFailed(f"the {refund.gateway} gateway is disabled or cannot refund now")
        gateway_id = gateway.refund(
            Refundable(refund.refund_no, refund.order.order_no, refund.txn_id, refund.amount)
        )
    except Exception as exc:  # a plugin's bug or timeout is a failed attempt like a refusal
        _record_failure(refund, token, exc)
    else:
        _record_sent(refund, str(gateway_id or ""), actor)
    return GatewayRefund.get_by_id(refund_id)


def send_due(limit: int = 100) -> int:
    """Try every pending refund whose time has come (a periodic job); returns how many the
    gateways accepted."""
    at = now()
    due = (
        GatewayRefund.select(GatewayRefund.id)
        .where(_due(at) & _unclaimed(at))
        .order_by(GatewayRefund.next_attempt_at)
        .limit(limit)
    )
    sent = 0
    for row in list(due):
        refund = attempt(row.id)
        if refund is not None and refund.status == "sent":
            sent += 1
    return sent


def _due(at):
    """Pending, and its wait after the last failure (if any) is over."""
    return (GatewayRefund.status == "pending") & (GatewayRefund.next_attempt_at <= at)


def _unclaimed(at):
    """No attempt holds the refund: never claimed, or its claim ran out."""
    return GatewayRefund.claimed_until.is_null() | (GatewayRefund.claimed_until <= at)


def retry_wait(attempts: int) -> timedelta:
    """How long after its `attempts`-th failure a refund is tried again: doubling from a
    minute, at most six hours."""
    return timedelta(seconds=min(FIRST_WAIT_SECONDS * 2 ** (attempts - 1), LONGEST_WAIT_SECONDS))


def _record_sent(refund: GatewayRefund, gateway_id: str, actor) -> None:
    """The gateway accepted: the money left the shop through it. Any attempt's success is the
    truth, also one whose claim ran out while it waited."""
    at = now()
    with db.atomic():
        moved = (
            GatewayRefund.update(
                status="sent",
                sent_at=at,
                updated_at=at,
                gateway_refund_id=gateway_id[:128],
                last_error="",
                claim=None,
                claimed_until=None,
            )
            .where((GatewayRefund.id == refund.id) & GatewayRefund.status.in_(IN_FLIGHT))
            .execute()
        )
        if moved:
            ledger.transfer(
                in_flight_account(refund.gateway),
                ledger.system_account(f"gateway:{refund.gateway}"),
                refund.amount,
                "refund.sent",
                ref=refund.order.order_no,
                idem_key=f"refund-sent:{refund.refund_no}",
                actor=actor,
            )
            return
    if GatewayRefund.get_by_id(refund.id).status == "rerouted":
        # only possible when an attempt outlived its claim and staff rerouted meanwhile
        log.error(
            "refund %s: %s accepted it after staff rerouted it; the buyer was refunded twice",
            refund.refund_no,
            refund.gateway,
        )


def _record_failure(refund: GatewayRefund, token: str, exc: Exception) -> None:
    """A failed attempt: the error is kept and the next try waits longer; after the last
    allowed attempt the refund is failed. Only the attempt holding the claim records it."""
    error = (str(exc) or type(exc).__name__)[:ERROR_CHARS]
    log.warning("refund %s through %s failed: %s", refund.refund_no, refund.gateway, error)
    at = now()
    limit = settings.get("refunds.max_attempts")
    with db.atomic():
        GatewayRefund.update(
            status=Case(None, [(GatewayRefund.attempts >= limit, "failed")], GatewayRefund.status),
            last_error=error,
            next_attempt_at=at + retry_wait(refund.attempts),
            claim=None,
            claimed_until=None,
            updated_at=at,
        ).where(
            (GatewayRefund.id == refund.id)
            & (GatewayRefund.claim == token)
            & GatewayRefund.status.in_(IN_FLIGHT)
        ).execute()


# staff -------------------------------------------------------------------------------------


def for_order(order: Order) -> GatewayRefund | None:
    return GatewayRefund.get_or_none(GatewayRefund.order == order.id)


def retry(order: Order, actor=None) -> GatewayRefund:
    """Staff try the gateway again now, e.g. after fixing its settings (audited)."""
    refund = _in_flight(order)
    after = attempt(refund.id, staff=True, actor=actor)
    if after is None:
        raise _busy_or_done(refund)
    return after


def reroute(order: Order, actor=None) -> GatewayRefund:
    """Staff give up on the gateway: the money goes to the buyer's wallet, or for a guest into
    the manual refund queue (audited). Refused while an attempt is talking to the gateway."""
    refund = _in_flight(order)
    at = now()
    with db.atomic():
        moved = (
            GatewayRefund.update(status="rerouted", claim=None, claimed_until=None, updated_at=at)
            .where(
                (GatewayRefund.id == refund.id)
                & GatewayRefund.status.in_(IN_FLIGHT)
                & _unclaimed(at)
            )
            .execute()
        )
        if not moved:
            raise _busy_or_done(refund)
        destination = payer_account(order)
        ledger.transfer(
            in_flight_account(refund.gateway),
            destination,
            refund.amount,
            "refund.rerouted",
            ref=order.order_no,
            idem_key=f"refund-rerouted:{refund.refund_no}",
            actor=actor,
        )
        record(
            "refund.reroute",
            target=_target(refund),
            actor=actor,
            gateway=refund.gateway,
            to=destination.code,
            amount=refund.amount,
        )
    return GatewayRefund.get_by_id(refund.id)


def _in_flight(order: Order) -> GatewayRefund:
    """The order's gateway refund, refused unless its money is still in flight."""
    refund = for_order(order)
    if refund is None:
        raise RefundError(
            N_("This order has no refund through a payment gateway."), "no_gateway_refund", 404
        )
    if refund.status not in IN_FLIGHT:
        raise _busy_or_done(refund)
    return refund


def _busy_or_done(refund: GatewayRefund) -> RefundError:
    """Why a staff action found the refund taken: an attempt holds it, or it is settled."""
    current = GatewayRefund.get_by_id(refund.id)
    if current.status in IN_FLIGHT:
        return RefundError(
            N_("The gateway is being asked about this refund right now; try again shortly."),
            "refund_busy",
            409,
        )
    return RefundError(
        N_("This refund is %(state)s; only a pending or failed one can be changed."),
        "refund_done",
        409,
        state=current.status,
    )


def _target(refund: GatewayRefund) -> str:
    return f"order:{refund.order.order_no}"


# listing -----------------------------------------------------------------------------------


def listing(status: str = ""):
    """Gateway refunds newest first, with their order numbers; optionally of one status."""
    query = GatewayRefund.select(GatewayRefund, Order.order_no).join(Order)
    if status:
        query = query.where(GatewayRefund.status == status)
    return query.order_by(GatewayRefund.id.desc())


def as_dict(refund: GatewayRefund) -> dict:
    """A refund for the CLI's JSON: amounts in fen, times in UTC."""
    return {
        "order_no": refund.order.order_no,
        "refund_no": refund.refund_no,
        "gateway": refund.gateway,
        "amount": refund.amount,
        "status": refund.status,
        "attempts": refund.attempts,
        "last_error": refund.last_error,
        "gateway_refund_id": refund.gateway_refund_id,
        "next_attempt_at": refund.next_attempt_at if refund.status == "pending" else None,
        "created_at": refund.created_at,
        "sent_at": refund.sent_at,
    }
