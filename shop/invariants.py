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


@check("card_key_states")
def card_key_states() -> list[str]:
    """Invariant 3: every card key in exactly one valid state."""
    from shop.inventory import checks

    return checks.key_states()


@check("reserved_keys")
def reserved_keys() -> list[str]:
    """Invariant 3: reserved keys are held by unpaid or undelivered orders, in full."""
    from shop.inventory import checks

    return checks.reserved_keys()


@check("sold_keys")
def sold_keys() -> list[str]:
    """Invariant 3: sold keys ↔ delivered orders, each key to one order, each order in full."""
    from shop.inventory import checks

    return checks.sold_keys()


@check("card_keys_unique")
def card_keys_unique() -> list[str]:
    """Invariant 3: no secret stored twice in one product, so none can be sold twice."""
    from shop.inventory import checks

    return checks.keys_unique()


@check("stock_matches_keys")
def stock_matches_keys() -> list[str]:
    """The stock customers see equals the available keys."""
    from shop.inventory import checks

    return checks.stock_matches_keys()


@check("escrow_matches_orders")
def escrow_matches_orders() -> list[str]:
    """Invariants 2 and 5: escrow (with their pending commission) holds exactly the paid,
    unsettled, unrefunded orders."""
    from shop.orders import checks

    return checks.escrow_matches_orders()


@check("refunds_in_one_place")
def refunds_in_one_place() -> list[str]:
    """Invariants 2 and 5: each refunded order's money went to the payer or on its way back
    through its gateway, and is now in exactly one place: wallet / refund queue, in flight,
    sent through the gateway, or rerouted by staff."""
    from shop.payments import checks

    return checks.refunds_in_one_place()


@check("refunds_in_flight")
def refunds_in_flight() -> list[str]:
    """Invariant 2: the accounts of refunds in flight hold exactly the pending and failed
    gateway refunds."""
    from shop.payments import checks

    return checks.in_flight_matches_refunds()


@check("settlements")
def settlements() -> list[str]:
    """Invariant 8: each settled order paid out exactly its amount, cost first."""
    from shop.orders import checks

    return checks.settlements()


@check("withdrawals_pending")
def withdrawals_pending() -> list[str]:
    """Invariant 2: each user's withdrawal_pending equals their requested and approved
    withdrawals."""
    from shop.withdrawals import checks

    return checks.pending_matches_open()


@check("withdrawal_journals")
def withdrawal_journals() -> list[str]:
    """Invariant 2: each withdrawal's journals match its status; a paid one's payout and fee
    left withdrawal_pending in one journal."""
    from shop.withdrawals import checks

    return checks.journals_match()


@check("commission_within_margin")
def commission_within_margin() -> list[str]:
    """Invariant 8: no order pays more commission than its margin (amount − cost)."""
    from shop.distribution import checks

    return checks.within_margin()


@check("commission_matches_ledger")
def commission_matches_ledger() -> list[str]:
    """Invariant 2: commission rows and the ledger agree, per order and per pending balance;
    commission debt accounts only record debts."""
    from shop.distribution import checks

    return checks.matches_ledger() + checks.debts()


@check("commission_follows_orders")
def commission_follows_orders() -> list[str]:
    """Pending commission belongs to unsettled orders, available to completed, reversed and
    clawed back to refunded ones."""
    from shop.distribution import checks

    return checks.follows_orders()


@check("order_points")
def order_points() -> list[str]:
    """Invariants 2 and 8: points of orders are held by the pool while the order stands and
    back with the buyer once it does not; list price = amount paid + points value."""
    from shop.points import checks

    return checks.order_points()


@check("referral_awards")
def referral_awards() -> list[str]:
    """Invariant 2: referral points issued once per invited user, each with its award."""
    from shop.points import checks

    return checks.referral_awards()
