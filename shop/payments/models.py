from peewee import AutoField, BigIntegerField, CharField, DateTimeField, ForeignKeyField

from shop.accounts.models import User
from shop.clock import now
from shop.db import BaseModel


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
