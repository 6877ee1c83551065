"""The double-entry ledger: every movement of money or points is one balanced journal.

Wallets, escrow, commission balances, points, supplier payables and shop revenue are accounts
here; `post()` is the only way their balances change. See `models` for the sign convention and
`accounts` for the kinds of account the shop uses.
"""

from shop.ledger.accounts import (
    QUALIFIED_SYSTEM_KINDS,
    SYSTEM_ACCOUNTS,
    USER_KINDS,
    account,
    system_account,
    user_account,
)
from shop.ledger.errors import IdempotencyConflict, InsufficientFunds, LedgerError
from shop.ledger.integrity import check
from shop.ledger.models import MONEY, POINTS, UNITS, Account, Entry, Journal
from shop.ledger.service import balance, post, transfer

__all__ = [
    "MONEY",
    "POINTS",
    "QUALIFIED_SYSTEM_KINDS",
    "SYSTEM_ACCOUNTS",
    "UNITS",
    "USER_KINDS",
    "Account",
    "Entry",
    "IdempotencyConflict",
    "InsufficientFunds",
    "Journal",
    "LedgerError",
    "account",
    "balance",
    "check",
    "post",
    "system_account",
    "transfer",
    "user_account",
]
