"""The order state machine: the one function through which every status changes.

A transition is a compare-and-set UPDATE (`WHERE status = <from>`), so two processes racing to
move the same order cannot both succeed: the loser gets `StaleOrder` and its transaction rolls
back. Each transition writes the order's event, which is the audit record of the
transition (who, when, from, to, why: the order's own history, shown to customer and staff);
a transition made by someone other than the buyer (staff) is also written to the shop's audit
log. The matching plugin hook fires after the transaction commits.
"""

from itertools import pairwise

from shop import plugins
from shop.audit import record
from shop.clock import now
from shop.db import db, run
from shop.orders.models import Order

TRANSITIONS: dict[str | None, set[str]] = {
    None: {"pending"},
    "pending": {"paid", "cancelled", "expired"},
    "expired": {"paid", "refunded"},
    "paid": {"delivered", "held", "refunded"},
    "held": {"paid", "refunded"},
    "delivered": {"completed", "disputed", "refunded"},
    "disputed": {"delivered", "refunded"},
    "completed": {"refunded"},  # staff only: the settlement and commission are taken back
    "cancelled": set(),
    "refunded": set(),
}

HOOKS = {
    "pending": "order_created",
    "paid": "order_paid",
    "delivered": "order_delivered",
    "completed": "order_completed",
    "refunded": "order_refunded",
}

TIMESTAMPS = {
    "paid": "paid_at",
    "delivered": "delivered_at",
    "completed": "completed_at",
    "refunded": "refunded_at",
}


class StaleOrder(RuntimeError):
    """The order is no longer in the status the caller saw; someone else moved it first."""


class IllegalTransition(ValueError):
    """The lifecycle does not allow this move (e.g. refunding a cancelled order)."""


def can(order: Order, to: str) -> bool:
    return to in TRANSITIONS.get(order.status, set())


# The statuses an order inserted in a status has been through: an API order is inserted paid,
# because it is paid in the transaction that creates it.
BIRTHS = {"pending": ("pending",), "paid": ("pending", "paid")}


def transition(
    order: Order,
    to: str,
    *,
    actor=None,
    reason: str = "",
    new: bool = False,
    **changes,
) -> Order:
    """Move `order` to status `to`, with any other column `changes`, inside the caller's
    transaction; updates `order` in place and returns it.

    `new=True` first records the birth of an order just inserted in its status (with that
    status's timestamp already in the row); `to` is then that status (the birth alone) or the
    next one: an API order is inserted paid and delivered in one transaction, and its three
    steps, each with its event and hook, cost one UPDATE and one INSERT. `reason` is the last
    step's.
    """
    start = order.status
    path = (None, *BIRTHS[start]) if new else ()
    # the birth is the buyer's doing (None for a guest); the move is the actor's
    steps = [(a, b, order.user_id) for a, b in pairwise(path)]
    moving = not (new and to == start)
    if moving:
        steps.append((start, to, getattr(actor, "id", actor)))
    for a, b, _ in steps:
        if b not in TRANSITIONS.get(a, set()):
            raise IllegalTransition(f"an order cannot go from {a} to {b}")
    if moving:
        stamp = TIMESTAMPS.get(to)
        if stamp and stamp not in changes:
            changes[stamp] = now()
        if reason:
            changes.setdefault("reason", reason)
        fields = Order._meta.fields
        columns = "".join(f', "{fields[name].column_name}" = ?' for name in changes)
        values = [fields[name].db_value(value) for name, value in changes.items()]
        updated = run(
            f'UPDATE "order" SET "status" = ?{columns} WHERE "id" = ? AND "status" = ?',
            (to, *values, order.id, start),
        ).rowcount
        if updated != 1:
            raise StaleOrder(f"order {order.order_no} is no longer {start}")
        order.status = to
        for name, value in changes.items():
            setattr(order, name, value)
    stamp = now()
    last = len(steps) - 1
    events = [(a, b, who, reason if i == last else "") for i, (a, b, who) in enumerate(steps)]
    run(
        'INSERT INTO "order_event" ("order_id", "from_status", "to_status", "actor_id", '
        '"reason", "created_at") VALUES ' + ", ".join("(?, ?, ?, ?, ?, ?)" for _ in events),
        [x for a, b, who, why in events for x in (order.id, a, b, who, why, stamp)],
    )
    for a, b, who, why in events:
        _announce(order, a, b, who, why)
    return order


def _announce(order: Order, frm, to: str, actor_id, reason: str) -> None:
    """A step's audit row (when someone other than the buyer made it) and its hooks."""
    if actor_id is not None and actor_id != order.user_id:
        # someone acted on another's order (staff): that also goes into the shop's audit log
        detail = {"from": frm} if frm else {}
        if reason:
            detail["reason"] = reason
        record(f"order.{to}", target=f"order:{order.order_no}", actor=actor_id, **detail)
    hook = HOOKS.get(to)
    if hook:
        # after commit: a plugin never sees (or mails about) a change that was rolled back
        db.after_commit(lambda: plugins.fire(hook, order=order))
    plugins.notify(event=f"order.{to}", order_no=order.order_no)
