"""Crediting payments exactly once, and wallet top-ups.

`record_payment` is the one way a gateway's word that money arrived becomes ledger entries.
The (gateway, txn_id) row is inserted first inside the transaction: a second delivery of the
same callback, sequential or concurrent, hits the unique index and credits nothing
(DESIGN.md invariant 4). The payment must name a known order or top-up and carry exactly its
amount; otherwise nothing is written and the gateway is told no.
"""

from peewee import IntegrityError

from shop import faults, ledger, plugins
from shop.accounts.models import User
from shop.audit import record
from shop.clock import now
from shop.db import db, is_postgres
from shop.messages import N_, Refusal
from shop.money import format_amount
from shop.orders import service as orders
from shop.orders.models import Order
from shop.orders.numbers import new_order_no
from shop.payments.gateway import Payable
from shop.payments.models import Payment, TopUp

TOPUP_PREFIX = "T"
MIN_TOPUP = 100
MAX_TOPUP = 10_000_000
WALLET_PATH = "/wallet"


class PaymentError(Refusal):
    """A payment notification or top-up the shop refuses (unknown order, wrong amount...)."""


def gateways() -> dict:
    """The enabled gateways by name, each an object from a plugin's `payment_gateways`."""
    return {g.name: g for g in plugins.collect("payment_gateways")}


def gateway(name: str):
    found = gateways().get(name)
    if found is None:
        raise PaymentError(N_("The payment method %(name)s is not available."), name=repr(name))
    return found


def payable_for_order(order: Order) -> Payable:
    """What a gateway is asked to charge for a pending order; the buyer comes back to its page."""
    subject = order.product_name
    if order.quantity > 1:
        subject = f"{subject} x{order.quantity}"
    return Payable(order.order_no, order.amount, subject, _order_path(order.order_no))


def payable_for_topup(topup: TopUp) -> Payable:
    subject = f"Wallet top-up {format_amount(topup.amount)}"
    return Payable(topup.topup_no, topup.amount, subject, WALLET_PATH)


def return_path(ref: str) -> str:
    """Where a buyer coming back from a gateway's cashier with `ref` lands. The ref comes from
    the buyer's browser, so it is looked up rather than pasted into a URL: an unknown one goes
    home."""
    ref = (ref or "").strip()
    if ref.startswith(TOPUP_PREFIX) and TopUp.get_or_none(TopUp.topup_no == ref):
        return WALLET_PATH
    if Order.get_or_none(Order.order_no == ref):
        return _order_path(ref)
    return "/"


def _order_path(order_no: str) -> str:
    return f"/o/{order_no}"


def _locked(query):
    return query.for_update() if is_postgres() else query


def record_payment(gateway_name: str, txn_id: str, ref: str, amount: int) -> str:
    """Credit a verified payment of `amount` fen for order or top-up `ref`. Returns the outcome:
    paid / reclaimed / refunded / duplicate for orders, topup for top-ups, and `already` when
    this (gateway, txn_id) was credited before."""
    if type(amount) is not int or amount <= 0:
        raise PaymentError(N_("The amount must be a positive number of fen."))
    txn_id = (txn_id or "").strip()
    if not txn_id or len(txn_id) > 128:
        raise PaymentError(N_("A payment needs the gateway's transaction id."))
    order_id = None
    with db.atomic():
        if Payment.get_or_none((Payment.gateway == gateway_name) & (Payment.txn_id == txn_id)):
            return "already"
        try:
            with db.atomic():
                payment = Payment.create(
                    gateway=gateway_name, txn_id=txn_id, ref=ref, amount=amount, outcome="new"
                )
        except IntegrityError:
            return "already"  # a concurrent delivery of the same callback won
        if ref.startswith(TOPUP_PREFIX):
            outcome = _credit_topup(gateway_name, txn_id, ref, amount)
        else:
            order = _locked(Order.select().where(Order.order_no == ref)).first()
            if order is None:
                raise PaymentError(N_("No order %(ref)s."), ref=ref)
            if amount != order.amount:
                raise PaymentError(
                    N_("Paid %(amount)d fen for order %(ref)s, which costs %(cost)d fen."),
                    amount=amount,
                    ref=ref,
                    cost=order.amount,
                )
            outcome = orders.credit_gateway_payment(order, gateway_name, txn_id, amount)
            order_id = order.id
        Payment.update(outcome=outcome).where(Payment.id == payment.id).execute()
        record("payment.credit", target=ref, gateway=gateway_name, txn=txn_id, outcome=outcome)
    if order_id and outcome in ("paid", "reclaimed"):
        faults.point("payment.committed")  # paid, not yet delivered: resume_paid's case
        orders.deliver(order_id)
    return outcome


def create_topup(user: User, amount: int, gateway_name: str) -> TopUp:
    if type(amount) is not int or not MIN_TOPUP <= amount <= MAX_TOPUP:
        raise PaymentError(N_("Top up between 1.00 and 100000.00."))
    if gateway_name == "wallet":
        raise PaymentError(N_("Choose a payment method other than the wallet itself."))
    gateway(gateway_name)
    return TopUp.create(
        topup_no=new_order_no(TOPUP_PREFIX), user=user.id, amount=amount, gateway=gateway_name
    )


def _credit_topup(gateway_name: str, txn_id: str, ref: str, amount: int) -> str:
    topup = _locked(TopUp.select().where(TopUp.topup_no == ref)).first()
    if topup is None:
        raise PaymentError(N_("No top-up %(ref)s."), ref=ref)
    if amount != topup.amount:
        raise PaymentError(
            N_("Paid %(amount)d fen for top-up %(ref)s of %(cost)d fen."),
            amount=amount,
            ref=ref,
            cost=topup.amount,
        )
    ledger.transfer(
        ledger.system_account(f"gateway:{gateway_name}"),
        ledger.user_account(topup.user_id, "wallet"),
        amount,
        "wallet.topup",
        ref=ref,
        idem_key=f"pay:{gateway_name}:{txn_id}",
    )
    TopUp.update(status="paid", paid_at=now()).where(TopUp.id == topup.id).execute()
    return "topup"


def credit_wallet(user_id: int, amount: int, memo: str = "", actor=None) -> int:
    """Staff add money to a wallet (cash received, compensation). Audited; returns balance."""
    if type(amount) is not int or amount <= 0:
        raise PaymentError(N_("The amount must be more than zero."))
    if User.get_or_none(User.id == user_id) is None:
        raise PaymentError(N_("No user %(id)s."), id=user_id)
    wallet = ledger.user_account(user_id, "wallet")
    with db.atomic():
        ledger.transfer(
            ledger.system_account("equity"), wallet, amount, "wallet.credit", memo=memo, actor=actor
        )
        record("wallet.credit", target=f"user:{user_id}", actor=actor, amount=amount, memo=memo)
    return ledger.balance(wallet)
