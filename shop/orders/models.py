from peewee import (
    SQL,
    AutoField,
    BigIntegerField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from shop.accounts.models import User
from shop.catalog.models import Product
from shop.clock import now
from shop.crypto import EncryptedField
from shop.db import BaseModel


class Order(BaseModel):
    """One purchase of one product. Money in fen. Contact, recharge fields and IP are
    ciphertext; `contact_index` is the blind index a guest's look-up matches on.

    `api_user_id` + `idem_key` make API orders idempotent: the same key from the same user is
    the same order (unique index), and `request_hash` tells a replay from a different body.
    """

    id = AutoField()
    order_no = CharField(max_length=40, unique=True)
    user = ForeignKeyField(User, null=True, backref="orders", on_delete="RESTRICT")
    product = ForeignKeyField(Product, backref="orders", on_delete="RESTRICT")
    product_name = CharField(max_length=120)
    kind = CharField(max_length=16)
    quantity = IntegerField()
    unit_price = BigIntegerField()
    amount = BigIntegerField()
    cost = BigIntegerField(default=0)
    # points paid on top of `amount` and what they were worth (shop.points): the list price
    # is amount + points_value
    points_used = BigIntegerField(default=0, constraints=[SQL("DEFAULT 0")])
    points_value = BigIntegerField(default=0, constraints=[SQL("DEFAULT 0")])
    status = CharField(max_length=12, index=True)
    gateway = CharField(max_length=32, default="")
    contact = EncryptedField("order.contact", null=True)
    contact_index = CharField(max_length=64, null=True)
    query_password_hash = CharField(max_length=255, null=True)
    fields = EncryptedField("order.fields", null=True)
    ip = EncryptedField("order.ip", null=True)
    referrer_id = IntegerField(null=True)
    api_user_id = IntegerField(null=True)
    idem_key = CharField(max_length=128, null=True)
    request_hash = CharField(max_length=64, null=True)
    reason = TextField(default="")
    created_at = DateTimeField(default=now, index=True)
    expires_at = DateTimeField(null=True)
    paid_at = DateTimeField(null=True)
    delivered_at = DateTimeField(null=True)
    settle_after = DateTimeField(null=True)
    completed_at = DateTimeField(null=True)
    refunded_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("api_user_id", "idem_key"), True),)


# The periodic jobs look for pending orders past their reservation and delivered orders past
# their escrow window. Partial indexes hold only those orders, so an order that skips a status
# (an API order is born paid) or has left it costs them nothing on every write; `status` leads
# so that SQLite prefers them to the plain status index for the jobs' queries.
Order.add_index(
    Order.index(
        Order.status, Order.expires_at, where=(Order.status == "pending"), name="order_expiring"
    )
)
Order.add_index(
    Order.index(
        Order.status, Order.settle_after, where=(Order.status == "delivered"), name="order_settling"
    )
)


class OrderEvent(BaseModel):
    """One transition of one order: the order's own history, shown to the customer."""

    id = AutoField()
    order = ForeignKeyField(Order, backref="events", on_delete="CASCADE")
    from_status = CharField(max_length=12, null=True)
    to_status = CharField(max_length=12)
    actor_id = IntegerField(null=True)
    reason = TextField(default="")
    created_at = DateTimeField(default=now)


class DeliveryItem(BaseModel):
    """What staff or a plugin handed over for a manual or recharge order (a code, a receipt).
    Card orders deliver their card keys instead."""

    id = AutoField()
    order = ForeignKeyField(Order, backref="items", on_delete="CASCADE")
    secret = EncryptedField("delivery.secret")
    created_at = DateTimeField(default=now)
