"""What a payment gateway plugin provides. Plugins return instances from `payment_gateways`.

A gateway is offered at checkout when its plugin is enabled and `ready()` is true. The shop
calls `start(payable)` when the buyer chooses it: the gateway answers with a response, usually
a redirect to the gateway's cashier. The gateway calls back `/pay/<name>/notify`; the shop
hands that request to `handle_notify`, which verifies it and calls
`shop.payments.service.record_payment` and returns the answer the gateway expects. The buyer's
browser comes back through `/pay/<name>/return` to `handle_return`, which must never credit
anything: only the signed server-to-server notify does.
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


class Gateway:
    name = ""
    title = ""
    supports_topup = True
    # False for a demo gateway that takes no money: while one is offered, every storefront
    # page warns buyers that orders are not really paid.
    real_money = True

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

    def refund(self, order, amount: int) -> bool:
        """Send `amount` back through the gateway; False when the gateway cannot."""
        return False
