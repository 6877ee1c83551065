"""The withdrawal record: what was asked, where to send it (encrypted), and who decided."""

from peewee import (
    AutoField,
    BigIntegerField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
)

from shop.accounts.models import User
from shop.clock import now
from shop.crypto import EncryptedField
from shop.db import BaseModel

# How staff can send the money: these keys are stored, `forms.METHOD_LABELS` are shown.
METHODS = ("alipay", "wechat", "bank")
# requested → approved → paid, or requested/approved → rejected. Requested and approved
# withdrawals hold their amount in the user's withdrawal_pending account.
STATUSES = ("requested", "approved", "paid", "rejected")
OPEN_STATUSES = ("requested", "approved")


class Withdrawal(BaseModel):
    """One request to be paid commission. `amount` leaves the commission balance; `fee` goes
    to the shop; `payout` (amount − fee) is what staff send to the payee.

    The payee's name and account are personal data, so they are ciphertext (invariant 7).
    Staff ids are plain integers, like the ledger's, so the record outlives a staff account.
    `decided_*` is the standing decision (approval, or a later rejection); the audit log
    keeps every step.
    """

    id = AutoField()
    user = ForeignKeyField(User, backref="withdrawals", index=True, on_delete="RESTRICT")
    amount = BigIntegerField()
    fee = BigIntegerField(default=0)
    payout = BigIntegerField()
    method = CharField(max_length=16)
    payee_name = EncryptedField("withdrawal.payee_name")
    payee_account = EncryptedField("withdrawal.payee_account")
    status = CharField(max_length=16, default="requested", index=True)
    reason = CharField(max_length=500, default="")  # why it was rejected, shown to the user
    reference = CharField(max_length=128, default="")  # the payment's reference, from staff
    created_at = DateTimeField(default=now, index=True)
    decided_at = DateTimeField(null=True)
    decided_by = IntegerField(null=True)
    paid_at = DateTimeField(null=True)
    paid_by = IntegerField(null=True)

    class Meta:
        table_name = "withdrawals"

    @property
    def ref(self) -> str:
        """The ledger reference of its journals, e.g. W12."""
        return ledger_ref(self.id)


def ledger_ref(withdrawal_id: int) -> str:
    return f"W{withdrawal_id}"
