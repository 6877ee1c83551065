from peewee import AutoField, CharField, DateTimeField, ForeignKeyField, IntegerField

from shop.catalog.models import Product
from shop.clock import now
from shop.crypto import EncryptedField
from shop.db import BaseModel

STATES = ("available", "reserved", "sold", "void")


class CardKey(BaseModel):
    """One card key. The secret is ciphertext; `secret_index` (a blind index) finds duplicates
    within a product without decrypting. `order_id` names the one order a reserved or sold key
    belongs to (invariant 3)."""

    id = AutoField()
    product = ForeignKeyField(Product, backref="keys", on_delete="RESTRICT", index=False)
    secret = EncryptedField("cardkey.secret")
    secret_index = CharField(max_length=64)
    state = CharField(max_length=12, default="available")
    order_id = IntegerField(null=True, index=True)
    reserved_until = DateTimeField(null=True)
    batch = CharField(max_length=32, default="")
    created_at = DateTimeField(default=now)
    sold_at = DateTimeField(null=True)

    class Meta:
        # (product, ...) first in both: they also serve as the foreign key's index
        indexes = (
            (("product", "secret_index"), True),
            (("product", "state", "id"), False),
        )
