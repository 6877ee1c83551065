"""Audit rules for refunds (DESIGN.md invariants 2 and 5), run by `shop audit` on a live
database: each refunded order's money is in exactly one place, and the accounts of refunds in
flight hold exactly the refunds not yet sent. Set-based statements, as in `shop.orders.checks`.
"""

from peewee import JOIN, Case, Value, fn

from shop.ledger.models import Account, Entry, Journal
from shop.orders.models import Order
from shop.payments.models import IN_FLIGHT, GatewayRefund

IN_FLIGHT_KIND = "refunds_in_flight"


def in_flight_matches_refunds() -> list[str]:
    """Each `refunds_in_flight:<gateway>` account holds exactly the pending and failed
    refunds through that gateway (one statement: one snapshot)."""
    held = (
        GatewayRefund.select(
            Value(f"{IN_FLIGHT_KIND}:").concat(GatewayRefund.gateway).alias("code"),
            fn.SUM(GatewayRefund.amount).alias("total"),
        )
        .where(GatewayRefund.status.in_(IN_FLIGHT))
        .group_by(GatewayRefund.gateway)
        .alias("held")
    )
    total = fn.COALESCE(held.c.total, 0)
    rows = (
        Account.select(Account.code, Account.balance, total)
        .join(held, JOIN.LEFT_OUTER, on=(held.c.code == Account.code))
        .where((Account.kind == IN_FLIGHT_KIND) & (Account.balance != total))
        .order_by(Account.code)
        .tuples()
    )
    return [
        f"account {code} holds {balance}, but its pending and failed refunds add up to {int(due)}"
        for code, balance, due in rows
    ]


def refunds_in_one_place(limit: int = 100) -> list[str]:
    """Each refunded order's payment left escrow once (`refund:<order no>`), either to the
    payer (the buyer's wallet, a guest's `refunds_payable`) with no gateway refund, or into
    `refunds_in_flight:<gateway>` with a gateway refund of the same amount whose status says
    where it is now: pending or failed (still there), sent (one `refund-sent` journal) or
    rerouted (one `refund-rerouted` journal), never both. And no gateway refund belongs to an
    order that is not refunded."""
    returned, sent, rerouted = Journal.alias(), Journal.alias(), Journal.alias()
    payer = Case(
        None,
        [(Order.user.is_null(), Value("shop:refunds_payable"))],
        Value("user:").concat(Order.user).concat(":wallet"),
    )
    flight = Value(f"{IN_FLIGHT_KIND}:").concat(GatewayRefund.gateway)
    went_to_flight = Account.code.startswith(f"{IN_FLIGHT_KIND}:")
    status = GatewayRefund.status
    rows = (
        Order.select(
            Order.order_no,
            Order.amount,
            Account.code,
            Entry.amount,
            status,
            sent.id.is_null(False),
            rerouted.id.is_null(False),
        )
        .join(
            returned,
            JOIN.LEFT_OUTER,
            on=(returned.idem_key == Value("refund:").concat(Order.order_no)),
        )
        .join(Entry, JOIN.LEFT_OUTER, on=((Entry.journal == returned.id) & (Entry.amount > 0)))
        .join(Account, JOIN.LEFT_OUTER, on=(Account.id == Entry.account))
        .join_from(Order, GatewayRefund, JOIN.LEFT_OUTER, on=(GatewayRefund.order == Order.id))
        .join(
            sent,
            JOIN.LEFT_OUTER,
            on=(sent.idem_key == Value("refund-sent:").concat(GatewayRefund.refund_no)),
        )
        .join_from(
            GatewayRefund,
            rerouted,
            JOIN.LEFT_OUTER,
            on=(rerouted.idem_key == Value("refund-rerouted:").concat(GatewayRefund.refund_no)),
        )
        .where((Order.status == "refunded") & (Order.amount > 0))
        .where(
            Account.code.is_null()
            | (Entry.amount != Order.amount)
            | (went_to_flight & GatewayRefund.id.is_null())
            | (~went_to_flight & (GatewayRefund.id.is_null(False) | (Account.code != payer)))
            | (GatewayRefund.amount != Order.amount)
            | (went_to_flight & (Account.code != flight))
            | ((status == "sent") != sent.id.is_null(False))
            | ((status == "rerouted") != rerouted.id.is_null(False))
        )
        .order_by(Order.id)
        .limit(limit)
        .tuples()
    )
    problems = [
        f"refunded order {order_no} of {amount}: its refund went to {code or 'nowhere'}"
        f"{f' ({moved})' if code else ''}, gateway refund {state or 'none'}, "
        f"sent journal {'yes' if was_sent else 'no'}, rerouted journal "
        f"{'yes' if was_rerouted else 'no'}"
        for order_no, amount, code, moved, state, was_sent, was_rerouted in rows
    ]
    strays = (
        GatewayRefund.select(GatewayRefund.refund_no, Order.order_no, Order.status)
        .join(Order)
        .where(Order.status != "refunded")
        .order_by(GatewayRefund.id)
        .limit(limit)
        .tuples()
    )
    problems += [
        f"gateway refund {refund_no} belongs to order {order_no}, which is {state}"
        for refund_no, order_no, state in strays
    ]
    return problems
