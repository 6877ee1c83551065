import json

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from shop.clock import now
from shop.db import BaseModel

KINDS = ("card", "recharge", "manual")


class Category(BaseModel):
    id = AutoField()
    name = CharField(max_length=80)
    slug = CharField(max_length=80, unique=True)
    sort_order = IntegerField(default=0)
    visible = BooleanField(default=True)
    created_at = DateTimeField(default=now)


class Product(BaseModel):
    """A thing the shop sells. Amounts are integers in fen.

    `stock` is the count of available card keys, kept by the same transactions that move keys
    between states, so a product page reads one column instead of counting keys; it is NULL
    for kinds without counted stock (recharge, manual). `fields_json` lists what the buyer must
    type (e.g. the account to top up) with a validation pattern; `tiers_json` holds wholesale
    tiers as [[min_quantity, unit_price], ...].
    """

    id = AutoField()
    category = ForeignKeyField(Category, null=True, backref="products", on_delete="SET NULL")
    name = CharField(max_length=120, index=True)
    description = TextField(default="")
    image = CharField(max_length=255, default="")
    kind = CharField(max_length=16, default="card")
    price = BigIntegerField()
    cost = BigIntegerField(default=0)
    free = BooleanField(default=False)
    min_qty = IntegerField(default=1)
    max_qty = IntegerField(default=100)
    visible = BooleanField(default=True, index=True)
    sort_order = IntegerField(default=0)
    stock = IntegerField(null=True)
    sold_count = IntegerField(default=0)
    low_stock_threshold = IntegerField(default=0)
    fields_json = TextField(default="[]")
    tiers_json = TextField(default="[]")
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    @property
    def fields(self) -> list[dict]:
        return json.loads(self.fields_json or "[]")

    @property
    def tiers(self) -> list[tuple[int, int]]:
        return [tuple(t) for t in json.loads(self.tiers_json or "[]")]

    @property
    def in_stock(self) -> bool:
        return self.stock is None or self.stock > 0

    @property
    def low_on_stock(self) -> bool:
        """Card stock at or below the threshold staff set (with 0: sold out)."""
        return self.kind == "card" and (self.stock or 0) <= self.low_stock_threshold


# the same rule as `low_on_stock`, for queries (the admin list and the dashboard count)
LOW_STOCK = (Product.kind == "card") & (Product.stock <= Product.low_stock_threshold)
