"""Ledger tables: accounts with a cached balance, journals, and the entries that move value.

Sign convention: an entry's `amount` is what it adds to its account's balance. Positive raises
the balance, negative lowers it, and the entries of one journal sum to zero per unit, so the
balances of all accounts of one unit always sum to zero. Customer-owned accounts and the escrow
hold positive balances; the accounts value enters the shop from (gateways, owner equity, the
points pool) run negative by exactly what they brought in.

Amounts are integers of the unit's minor unit: fen for money, whole points for points.
"""

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
)

from shop.clock import now
from shop.db import BaseModel

MONEY = "CNY"  # amounts in fen
POINTS = "PTS"  # amounts in whole points
UNITS = (MONEY, POINTS)


class Account(BaseModel):
    """A balance of one unit, named by a unique `code` such as `user:12:wallet` or `shop:escrow`.

    `kind` is a free string so new areas can add accounts without a migration; the kinds in
    use are listed in `shop.ledger.accounts`. `balance` is a cache of the sum of the account's
    entries, kept in step by `post()` and verified by `check()`. `may_go_negative` is fixed when
    the account is created: false for anything a customer owns.
    """

    id = AutoField()
    code = CharField(max_length=128, unique=True)
    owner_id = IntegerField(null=True, index=True)
    kind = CharField(max_length=32, index=True)
    unit = CharField(max_length=8)
    balance = BigIntegerField(default=0)
    may_go_negative = BooleanField(default=False)
    created_at = DateTimeField(default=now)

    def __str__(self):
        return self.code


class Journal(BaseModel):
    """One ledger transaction: the entries that belong to it move value and sum to zero.

    `idem_key` is unique, so a posting retried with the same key (a payment callback arriving
    twice, an API order repeated) is written once. `actor_id` is a plain integer so the journal
    outlives the user who made it.
    """

    id = AutoField()
    kind = CharField(max_length=64)
    memo = CharField(max_length=255, default="")
    ref = CharField(max_length=64, default="", index=True)
    idem_key = CharField(max_length=128, null=True, unique=True)
    actor_id = IntegerField(null=True)
    created_at = DateTimeField(default=now)


class Entry(BaseModel):
    """One line of a journal: `amount` (signed, minor units) added to `account`'s balance."""

    id = AutoField()
    journal = ForeignKeyField(Journal, backref="entries", index=True)
    account = ForeignKeyField(Account, backref="entries", index=True)
    amount = BigIntegerField()
    created_at = DateTimeField(default=now)
