from peewee import (
    AutoField,
    BigIntegerField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from shop.accounts.models import User
from shop.clock import now
from shop.db import BaseModel
from shop.orders.models import Order

# pending: to be sent (again) at next_attempt_at · failed: max attempts reached, staff decide ·
# sent: the gateway took it · rerouted: staff sent the money to the wallet / refund queue
REFUND_STATUSES = ("pending", "failed", "sent", "rerouted")
IN_FLIGHT = ("pending", "failed")  # the money is in refunds_in_flight:<gateway>


class Payment(BaseModel):
    """One payment a gateway reported. (gateway, txn_id) is unique: a callback that arrives
    again, however many times and however concurrently, finds its row and credits nothing."""

    id = AutoField()
    gateway = CharField(max_length=32)
    txn_id = CharField(max_length=128)
    ref = CharField(max_length=40, index=True)
    amount = BigIntegerField()
    outcome = CharField(max_length=24)
    created_at = DateTimeField(default=now)

    class Meta:
        indexes = ((("gateway", "txn_id"), True),)


class TopUp(BaseModel):
    """A wallet top-up waiting for (or credited by) a gateway payment."""

    id = AutoField()
    topup_no = CharField(max_length=40, unique=True)
    user = ForeignKeyField(User, backref="topups", on_delete="RESTRICT")
    amount = BigIntegerField()
    gateway = CharField(max_length=32)
    status = CharField(max_length=12, default="pending")
    created_at = DateTimeField(default=now)
    paid_at = DateTimeField(null=True)


class GatewayRefund(BaseModel):
    """A refunded order's money on its way back through the gateway that took it
    (shop.payments.refunds). One per order: only whole orders are refunded.

    `refund_no` is the id the gateway is given on every attempt, so a retry is the same
    refund. `claim` and `claimed_until` mark the one attempt talking to the gateway now; no
    other attempt, and no staff reroute, starts while a claim is live.
    """

    id = AutoField()
    order = ForeignKeyField(Order, unique=True, backref="gateway_refunds", on_delete="RESTRICT")
    refund_no = CharField(max_length=48, unique=True)
    gateway = CharField(max_length=32)
    txn_id = CharField(max_length=128)  # the gateway's number of the payment sent back
    amount = BigIntegerField()
    status = CharField(max_length=12, index=True, default="pending")
    attempts = IntegerField(default=0)
    last_error = TextField(default="")
    gateway_refund_id = CharField(max_length=128, default="")
    next_attempt_at = DateTimeField(default=now, index=True)
    claim = CharField(max_length=32, null=True)
    claimed_until = DateTimeField(null=True)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)
    sent_at = DateTimeField(null=True)
