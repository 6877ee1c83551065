from peewee import AutoField, BigIntegerField, CharField, DateTimeField, ForeignKeyField, TextField

from shop.accounts.models import User
from shop.clock import now
from shop.db import BaseModel

VIOLATION_KINDS = ("fraud", "chargeback", "abuse")


class ReferralAward(BaseModel):
    """The one referral award of an invited user. The unique `invited` column is what makes
    the award happen once, however many maturation jobs run at the same time: it is written
    in the same transaction as the ledger journal that issues the points."""

    id = AutoField()
    invited = ForeignKeyField(User, unique=True, backref="+", on_delete="RESTRICT")
    referrer = ForeignKeyField(User, backref="+", on_delete="RESTRICT")
    points = BigIntegerField()
    journal_id = BigIntegerField()
    created_at = DateTimeField(default=now)


class Violation(BaseModel):
    """A violation staff recorded against a user (a fraudulent order, a chargeback, abuse).
    Any violation keeps the user and their referrer from the referral award. A banned
    account and a refunded risk hold count too; they are read from the user and the orders."""

    id = AutoField()
    user = ForeignKeyField(User, backref="+", on_delete="RESTRICT")
    kind = CharField(max_length=16)
    order_no = CharField(max_length=40, default="")
    note = TextField(default="")
    actor_id = BigIntegerField(null=True)
    created_at = DateTimeField(default=now, index=True)
