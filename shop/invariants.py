"""The checks behind `shop audit`: each DESIGN.md invariant that exists gets a function here
or registers one from its own area. A check returns a list of problems; empty means healthy."""

from collections.abc import Callable

_CHECKS: dict[str, Callable[[], list[str]]] = {}


def check(name: str):
    def decorate(fn):
        _CHECKS[name] = fn
        return fn

    return decorate


def run_all() -> dict[str, list[str]]:
    return {name: fn() for name, fn in _CHECKS.items()}


@check("personal_data_encrypted")
def personal_data_encrypted() -> list[str]:
    """Invariant 7: no user's email or phone is stored in clear (read the raw columns)."""
    from shop.crypto import looks_encrypted
    from shop.db import db

    problems = []
    cursor = db.execute_sql("SELECT id, email, phone FROM users")
    for user_id, email, phone in cursor:
        for label, value in (("email", email), ("phone", phone)):
            if value is not None and not looks_encrypted(value):
                problems.append(f"user {user_id}: {label} is stored in clear")
    return problems


@check("ledger_balanced")
def ledger_balanced() -> list[str]:
    """Invariant 2: journals sum to zero, cached balances equal their entries, no customer
    balance below zero, amounts are integers."""
    from shop import ledger

    return ledger.check()
