"""Pay from the buyer's wallet balance.

The money moves inside the shop (wallet → escrow, `orders.service.pay_with_wallet`), so there
is no callback and no top-up through the wallet itself. Only the signed-in owner of an order
can pay it from their balance. A short balance pays nothing and brings the buyer back to the
order with the reason: the order stays pending with its stock held, and its page offers the
other ways to pay and a top-up, so the buyer pays this order instead of placing another.
"""

from flask import flash, redirect
from flask_login import current_user

from shop.errors import error_response
from shop.orders import service as orders
from shop.orders.models import Order
from shop.orders.service import OrderError
from shop.orders.state import StaleOrder
from shop.payments.gateway import Gateway
from shop.plugins import hookimpl


class WalletGateway(Gateway):
    name = "wallet"
    title = "Account balance"
    supports_topup = False

    def start(self, payable):
        if not current_user.is_authenticated:
            return error_response(
                403, "wallet_needs_account", "Sign in to pay with your account balance."
            )
        order = Order.get_or_none(Order.order_no == payable.ref)
        if order is None or order.user_id is None or order.user_id != current_user.id:
            # a top-up, a guest order, or another buyer's order: none is this wallet's to pay
            return error_response(
                403,
                "wallet_not_for_this",
                "The account balance pays only orders placed while signed in to this account. "
                "Choose another way to pay.",
            )
        try:
            orders.pay_with_wallet(order, actor=current_user._get_current_object())
        except OrderError as exc:  # e.g. the balance is short: back to the order, told why
            flash(exc.translated(), "error")
        except StaleOrder:  # a second click raced the first and lost; the first paid
            pass
        return redirect(payable.return_path, 303)


@hookimpl
def payment_gateways():
    return [WalletGateway()]
