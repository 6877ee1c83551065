from peewee import AutoField, BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField

from shop.clock import now
from shop.crypto import EncryptedField
from shop.db import BaseModel

ROLES = ("customer", "staff", "owner")


class User(BaseModel):
    """A person with an account. Contact data is ciphertext; `*_index` are keyed blind indexes
    so the shop can find a user by email or phone without storing either in the clear."""

    id = AutoField()
    email = EncryptedField("user.email")
    email_index = CharField(max_length=64, unique=True)
    phone = EncryptedField("user.phone", null=True)
    phone_index = CharField(max_length=64, unique=True, null=True)
    password_hash = CharField(max_length=255)
    role = CharField(max_length=16, default="customer", index=True)
    invite_code = CharField(max_length=16, unique=True)
    referrer = ForeignKeyField("self", null=True, backref="invitees", on_delete="RESTRICT")
    # the distributor level (shop.levels.models.Level): a plain id because the levels table
    # is created after this one, and staff never delete a level
    level_id = IntegerField(null=True, index=True)
    locale = CharField(max_length=8, null=True)
    is_active = BooleanField(default=True)
    session_version = IntegerField(default=1)
    created_at = DateTimeField(default=now, index=True)
    last_login_at = DateTimeField(null=True)

    class Meta:
        table_name = "users"

    # flask-login protocol. The id carries the session version, so a password change or a
    # forced logout (bumping the version) ends every other session of this user.
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}.{self.session_version}"

    @property
    def is_staff(self) -> bool:
        return self.role in ("staff", "owner")

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"
