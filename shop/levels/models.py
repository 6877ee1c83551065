from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
)

from shop.catalog.models import Product
from shop.clock import now
from shop.db import BaseModel

FULL_BPS = 10_000  # basis points in a whole: a discount of 10000 would give the goods away


class Level(BaseModel):
    """A distributor level such as member, agent or senior agent.

    Members pay the normal (tier) price less `discount_bps` basis points, unless the level has
    a fixed price for the product (`LevelPrice`). `rank` orders the levels: an automatic
    upgrade only ever moves a user to a higher rank. A level with `auto` set is reached by
    itself when every rule it sets is met: `min_spend` (fen of completed orders) and
    `min_referrals` (users whose referrer is this user); staff can set any level by hand.
    `commission_rates` ("12,6,3", percent per depth) replaces the shop's or product's rates for
    the commission a member of this level earns; NULL keeps them.
    """

    id = AutoField()
    name = CharField(max_length=40, unique=True)
    rank = IntegerField(unique=True)
    discount_bps = IntegerField(default=0)
    min_spend = BigIntegerField(null=True)
    min_referrals = IntegerField(null=True)
    auto = BooleanField(default=True)
    commission_rates = CharField(max_length=64, null=True)
    created_at = DateTimeField(default=now)

    def __str__(self):
        return self.name


class LevelPrice(BaseModel):
    """A fixed unit price (fen) of one product for the members of one level. It can go below
    the product's cost only because staff typed it: the discount alone never does."""

    id = AutoField()
    level = ForeignKeyField(Level, backref="prices", on_delete="CASCADE")
    product = ForeignKeyField(Product, backref="level_prices", on_delete="CASCADE")
    price = BigIntegerField()
    updated_at = DateTimeField(default=now)

    class Meta:
        indexes = ((("level", "product"), True),)
