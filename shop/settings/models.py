from peewee import CharField, DateTimeField, TextField

from shop.clock import now
from shop.db import BaseModel


class Setting(BaseModel):
    """A stored setting value as JSON; keys without a row take their registered default."""

    key = CharField(primary_key=True, max_length=64)
    value = TextField()
    updated_at = DateTimeField(default=now)
