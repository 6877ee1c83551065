from peewee import AutoField, CharField, DateTimeField, IntegerField, TextField

from shop.clock import now
from shop.db import BaseModel


class AuditLog(BaseModel):
    """One audited action. `actor_id` is a plain integer so a record outlives its actor."""

    id = AutoField()
    created_at = DateTimeField(default=now, index=True)
    actor_id = IntegerField(null=True, index=True)
    action = CharField(max_length=64, index=True)
    target = CharField(max_length=128, default="", index=True)
    detail = TextField(default="{}")
