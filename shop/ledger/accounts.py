"""Finding or opening ledger accounts, and the account kinds the shop knows.

Accounts are opened on first use rather than up front, so a new user or gateway needs no setup
step. Opening is safe when two requests race for the same code: the insert ignores a conflict on
`code` and both read back the one row that won.
"""

import re

from shop.db import db, local_cache, raw_one
from shop.ledger.errors import LedgerError
from shop.ledger.models import MONEY, POINTS, UNITS, Account

# Accounts a user owns, with their unit. None of them may go negative.
USER_KINDS = {
    "wallet": MONEY,  # prepaid balance spent at checkout and by API orders
    "points": POINTS,  # referral credit points, redeemed at checkout
    "commission_pending": MONEY,  # earned on a paid order, not yet settled
    "commission_available": MONEY,  # settled commission the user may withdraw
    "withdrawal_pending": MONEY,  # requested withdrawal awaiting staff payout or rejection
}

# Shop-level accounts: name -> (kind, unit, may_go_negative). The escrow may only release what
# it holds, so a bug that settles or refunds an order twice fails instead of minting money.
SYSTEM_ACCOUNTS = {
    "escrow": ("escrow", MONEY, False),  # paid orders not yet settled or refunded
    "revenue": ("revenue", MONEY, True),  # the shop's margin from settled orders
    "supplier_payable": ("supplier_payable", MONEY, True),  # cost owed to upstream suppliers
    "payout": ("payout", MONEY, True),  # withdrawals staff have paid out
    "equity": ("equity", MONEY, True),  # owner capital: manual wallet credits, corrections
    "cost_of_goods": ("cost_of_goods", MONEY, True),  # the owner's own stock cost, recovered
    "refunds_payable": ("refunds_payable", MONEY, True),  # refunds owed to guests, paid by staff
    "points_pool": ("points_pool", POINTS, True),  # the source points are issued from
}

# System kinds that take a qualifier (`gateway:epay`, `supplier_payable:7`): the name is the code.
QUALIFIED_SYSTEM_KINDS = {
    "gateway": ("gateway", MONEY, True),  # money collected by a payment gateway
    "supplier_payable": ("supplier_payable", MONEY, True),  # owed to one supplier
    # what one referrer owes back (`commission_debt:<user id>`, runs negative): commission
    # clawed back after a refund that their balance no longer held, netted from later commission
    "commission_debt": ("commission_debt", MONEY, True),
    # refunds on their way back through a gateway (`refunds_in_flight:epay`): out of escrow,
    # not yet accepted by the gateway (shop.payments.refunds); never below zero, so a refund
    # recorded as sent twice fails instead of minting money
    "refunds_in_flight": ("refunds_in_flight", MONEY, False),
}

_QUALIFIER = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def account(
    code: str, kind: str, unit: str, owner_id: int | None = None, may_go_negative: bool = False
) -> Account:
    """Return the account named `code`, opening it with these attributes if it does not exist.

    An existing account whose attributes differ is refused: one code means one account, and a
    caller asking for a money wallet must not be handed a points one.
    """
    if not code or not kind:
        raise LedgerError("an account needs a code and a kind")
    if unit not in UNITS:
        raise LedgerError(f"unknown unit {unit!r}: use one of {', '.join(UNITS)}")
    cache = local_cache("accounts")
    found = cache.get(code)
    if found is None:
        found = raw_one(Account, 'SELECT * FROM "account" WHERE "code" = ?', code)
    if found is None:
        Account.insert(
            code=code,
            kind=kind,
            unit=unit,
            owner_id=owner_id,
            may_go_negative=bool(may_go_negative),
        ).on_conflict(conflict_target=[Account.code], action="IGNORE").execute()
        found = Account.get(Account.code == code)
    wanted = (kind, unit, owner_id, bool(may_go_negative))
    actual = (found.kind, found.unit, found.owner_id, bool(found.may_go_negative))
    if actual != wanted:
        raise LedgerError(
            f"account {code} exists as (kind, unit, owner, may_go_negative)={actual}, not {wanted}"
        )
    if code not in cache:
        # code, kind, unit and owner never change (balances are always read fresh); cached
        # only once committed, so a rolled-back insert never leaves a ghost account behind
        db.after_commit(lambda: cache.setdefault(code, found))
    return found


def user_account(user_id: int, kind: str) -> Account:
    """The user's account of `kind` (see `USER_KINDS`), code `user:<id>:<kind>`."""
    if type(user_id) is not int or user_id <= 0:
        raise LedgerError(f"user id must be a positive integer, not {user_id!r}")
    if kind not in USER_KINDS:
        raise LedgerError(f"unknown user account kind {kind!r}: use one of {', '.join(USER_KINDS)}")
    return account(f"user:{user_id}:{kind}", kind, USER_KINDS[kind], owner_id=user_id)


def system_account(name: str) -> Account:
    """A shop-level account: a name of `SYSTEM_ACCOUNTS` (code `shop:<name>`) or a qualified
    name such as `gateway:epay` or `supplier_payable:7` (the name is the code).

    Unknown names are refused so a typo cannot open a stray account that money then vanishes to.
    """
    if name in SYSTEM_ACCOUNTS:
        kind, unit, may_go_negative = SYSTEM_ACCOUNTS[name]
        return account(f"shop:{name}", kind, unit, may_go_negative=may_go_negative)
    prefix, _, qualifier = name.partition(":")
    if prefix in QUALIFIED_SYSTEM_KINDS and _QUALIFIER.fullmatch(qualifier):
        kind, unit, may_go_negative = QUALIFIED_SYSTEM_KINDS[prefix]
        return account(name, kind, unit, may_go_negative=may_go_negative)
    raise LedgerError(
        f"unknown system account {name!r}: use one of {', '.join(SYSTEM_ACCOUNTS)} "
        f"or {', '.join(p + ':<name>' for p in QUALIFIED_SYSTEM_KINDS)}"
    )
