"""What a payment gateway plugin provides. Plugins return instances from `payment_gateways`.

A gateway is offered at checkout when its plugin is enabled and `ready()` is true. The shop
calls `start(payable)` when the buyer chooses it: the gateway answers with a response, usually
a redirect to the gateway's cashier. The gateway calls back `/pay/<name>/notify`; the shop
hands that request to `handle_notify`, which verifies it and calls
`shop.payments.service.record_payment` and returns the answer the gateway expects.
"""

from dataclasses import dataclass


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

    def ready(self) -> bool:
        return True

    def start(self, payable: Payable):
        raise NotImplementedError

    def handle_notify(self, request):
        raise NotImplementedError

    def refund(self, order, amount: int) -> bool:
        """Send `amount` back through the gateway; False when the gateway cannot."""
        return False
