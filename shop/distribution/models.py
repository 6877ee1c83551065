"""Commission records and per-product commission rates.

The ledger holds the money; these rows say whose money it is and why: which order, which
beneficiary at which depth of the referrer chain, at what rate. They are what the distributor
page lists and what the audit compares the ledger with.
"""

from peewee import (
    AutoField,
    BigIntegerField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    SmallIntegerField,
)

from shop.accounts.models import User
from shop.catalog.models import Product
from shop.clock import now
from shop.db import BaseModel
from shop.orders.models import Order

# pending: paid, not settled (in the user's commission_pending) · available: settled (moved to
# commission_available, less any debt it repaid) · reversed: refunded before settlement ·
# clawed_back: refunded after settlement (taken back from commission_available, the rest owed)
STATUSES = ("pending", "available", "reversed", "clawed_back")


class Commission(BaseModel):
    """One beneficiary's commission on one order. `rate_bps` is the rate applied (basis points
    of the amount paid), `amount` what it came to after the margin cap. `netted` is the part
    that repaid earlier debt when it became available; `debt` the part a claw-back could not
    take from the balance and the user now owes."""

    id = AutoField()
    order = ForeignKeyField(Order, backref="commissions", on_delete="RESTRICT")
    user = ForeignKeyField(User, backref="commissions", on_delete="RESTRICT")
    depth = SmallIntegerField()  # 1: the buyer's direct referrer
    rate_bps = IntegerField()
    amount = BigIntegerField()
    status = CharField(max_length=12, index=True)
    netted = BigIntegerField(default=0)
    debt = BigIntegerField(default=0)
    created_at = DateTimeField(default=now, index=True)
    settled_at = DateTimeField(null=True)
    reversed_at = DateTimeField(null=True)

    class Meta:
        indexes = (
            (("order", "user"), True),
            (("user", "created_at"), False),
        )


class ProductRates(BaseModel):
    """Commission rates for one product instead of the shop's `commission.rates` (stored in
    the same "10,5,2" form, percentages nearest referrer first)."""

    product = ForeignKeyField(
        Product, primary_key=True, backref="commission_rates", on_delete="CASCADE"
    )
    rates = CharField(max_length=64)
    updated_at = DateTimeField(default=now)

    class Meta:
        table_name = "product_commission_rates"
