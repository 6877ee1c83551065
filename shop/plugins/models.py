from peewee import BooleanField, CharField, DateTimeField, TextField

from shop.clock import now
from shop.db import BaseModel


class PluginState(BaseModel):
    """Whether staff enabled a plugin, and its settings as JSON (secrets as ciphertext)."""

    name = CharField(primary_key=True, max_length=64)
    enabled = BooleanField(default=False)
    settings = TextField(default="{}")
    updated_at = DateTimeField(default=now)
