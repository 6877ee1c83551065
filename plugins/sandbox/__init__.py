"""The sandbox gateway: pays instantly, for demos and tests. No money moves.

It credits through `record_payment` like a real gateway, so a sandbox order runs the same path
(escrow, delivery, settlement) as a paid one. Off unless staff enable it; while it is offered,
`real_money = False` puts the warning banner on every storefront page. It refunds too, so a
demo shows a refund going back through a gateway: the refund always succeeds at once and,
like the payment, moves no money anywhere outside the shop's ledger.
"""

import secrets

from flask import redirect

from shop.errors import error_response
from shop.payments.gateway import Gateway
from shop.payments.service import PaymentError, record_payment
from shop.plugins import hookimpl


class SandboxGateway(Gateway):
    name = "sandbox"
    title = "Sandbox (demo, no real money)"
    real_money = False
    can_refund = True

    def start(self, payable):
        try:
            record_payment(self.name, "sbx-" + secrets.token_hex(12), payable.ref, payable.amount)
        except PaymentError as exc:
            return error_response(400, "payment_refused", str(exc), exc.translated())
        return redirect(payable.return_path, 303)

    def refund(self, refundable):
        """Accepted at once. The sandbox's refund number is derived from the shop's, so asking
        again for the same refund answers the same, as a real gateway must."""
        return "sbx-" + refundable.refund_no


@hookimpl
def payment_gateways():
    return [SandboxGateway()]
