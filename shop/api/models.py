from peewee import (
    AutoField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
)

from shop.accounts.models import User
from shop.clock import now
from shop.crypto import EncryptedField
from shop.db import BaseModel


class ApiKey(BaseModel):
    """A user's API key. `key_id` is public (sent in every request); `secret` is the HMAC key,
    ciphertext at rest and shown to the user once. A revoked key stays, disabled, so its
    requests are refused as such and the audit log keeps a name to point at."""

    id = AutoField()
    key_id = CharField(max_length=40, unique=True)
    secret = EncryptedField("api.secret")
    user = ForeignKeyField(User, backref="api_keys", on_delete="CASCADE")
    label = CharField(max_length=80, default="")
    enabled = BooleanField(default=True)
    created_at = DateTimeField(default=now)
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)


class ApiNonce(BaseModel):
    """A nonce a key has used. The unique (key, nonce) pair is what refuses a replay; rows
    older than the window in which their request could still be replayed are pruned."""

    id = AutoField()
    api_key_id = IntegerField()
    nonce = CharField(max_length=128)
    created_at = DateTimeField(default=now, index=True)

    class Meta:
        indexes = ((("api_key_id", "nonce"), True),)
