"""What a payment gateway plugin provides. Plugins return instances from `payment_gateways`.

A gateway is offered at checkout when its plugin is enabled and `ready()` is true. The shop
calls `start(payable)` when the buyer chooses it: the gateway answers with a response, usually
a redirect to the gateway's cashier. The gateway calls back `/pay/<name>/notify`; the shop
hands that request to `handle_notify`, which verifies it and calls
`shop.payments.service.record_payment` and returns the answer the gateway expects. The buyer's
browser comes back through `/pay/<name>/return` to `handle_return`, which must never credit
anything: only the signed server-to-server notify does.

A gateway that can send a payment back sets `can_refund` (a class attribute, or a property
when it depends on the plugin's settings) and implements `refund`. Staff refunds of orders it
was paid with then go back through it (`shop.payments.refunds`); any other gateway's orders
are refunded to the buyer's wallet, or for guests into the shop's manual refund queue.
"""

from dataclasses import dataclass

from flask import abort


@dataclass(frozen=True)
class Payable:
    """An order or a top-up, as a gateway sees it: what to charge and what to call it."""

    ref: str  # the order or top-up number; the gateway's out_trade_no
    amount: int  # fen
    subject: str  # shown on the cashier page
    return_path: str  # where the buyer lands after paying (a path on this shop)


@dataclass(frozen=True)
class Refundable:
    """A whole payment to send back, as a gateway sees it."""

    refund_no: str  # the shop's number for this refund: the same on every retry of it
    ref: str  # the order number the payment was for; the gateway's out_trade_no
    txn_id: str  # the gateway's own number for that payment (its trade_no)
    amount: int  # fen: all of the payment


class RefundFailed(Exception):
    """The gateway did not refund: it said no, could not be reached, or answered something
    that does not prove the refund happened. The message is shown to staff."""


class Gateway:
    name = ""
    title = ""
    supports_topup = True
    # False for a demo gateway that takes no money: while one is offered, every storefront
    # page warns buyers that orders are not really paid.
    real_money = True
    can_refund = False

    def ready(self) -> bool:
        return True

    def start(self, payable: Payable):
        raise NotImplementedError

    def handle_notify(self, request):
        """A gateway that settles inside `start` (wallet, sandbox) gets no callbacks."""
        abort(404)

    def handle_return(self, request):
        """Only gateways that send the buyer away to a cashier bring them back here."""
        abort(404)

    def refund(self, refundable: Refundable) -> str:
        """Send the payment back through the gateway and return the gateway's number for the
        refund ("" when it gives none); raise when it did not happen (`RefundFailed` with the
        reason; any other exception counts as a failed attempt too).

        Called after the refund is committed, outside any database transaction, and possibly
        more than once for the same `refund_no`: after a timeout, or a crash before the answer
        was recorded. A repeat must be the same refund, never a second one: pass `refund_no`
        to the gateway as its refund id. Bound every network wait with a timeout (well under
        ten minutes, when the shop would try again alongside)."""
        raise RefundFailed(f"the {self.name} gateway cannot refund")
