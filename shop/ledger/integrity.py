"""The ledger's self-audit, run by the operator's `audit` command on a live database.

Each rule is one set-based query (GROUP BY or anti-join) rather than a loop over accounts, so
the audit stays quick as the entry table grows, and each query is a single statement, so it
sees one consistent snapshot while the shop keeps taking orders. Each rule reports at most
`limit` problems; a broken ledger is usually broken the same way many times over.
"""

from peewee import JOIN, fn

from shop.db import is_postgres
from shop.ledger.models import Account, Entry, Journal


def check(limit: int = 100) -> list[str]:
    """Human-readable ledger problems; an empty list means the ledger is healthy."""
    problems = []
    for rule in (
        _unbalanced_journals,
        _empty_journals,
        _stale_balances,
        _negative_balances,
        _zero_entries,
        _non_integers,
    ):
        found = list(rule(limit + 1))
        problems.extend(found[:limit])
        if len(found) > limit:
            problems.append(f"... more problems like the above not shown (limit {limit})")
    return problems


def _unbalanced_journals(cap: int):
    total = fn.SUM(Entry.amount)
    rows = (
        Entry.select(Journal.id, Journal.kind, Account.unit, total.alias("total"))
        .join_from(Entry, Journal)
        .join_from(Entry, Account)
        .group_by(Journal.id, Journal.kind, Account.unit)
        .having(total != 0)
        .order_by(Journal.id)
        .limit(cap)
        .tuples()
    )
    for journal_id, kind, unit, amount in rows:
        yield f"journal {journal_id} ({kind}) does not balance: its {unit} entries sum to {amount}"


def _empty_journals(cap: int):
    rows = (
        Journal.select(Journal.id, Journal.kind)
        .join(Entry, JOIN.LEFT_OUTER)
        .where(Entry.id.is_null())
        .order_by(Journal.id)
        .limit(cap)
        .tuples()
    )
    for journal_id, kind in rows:
        yield f"journal {journal_id} ({kind}) has no entries"


def _stale_balances(cap: int):
    sums = Entry.select(Entry.account.alias("account_id"), fn.SUM(Entry.amount).alias("total"))
    sums = sums.group_by(Entry.account).alias("sums")
    total = fn.COALESCE(sums.c.total, 0)
    rows = (
        Account.select(Account.code, Account.unit, Account.balance, total)
        .join(sums, JOIN.LEFT_OUTER, on=(Account.id == sums.c.account_id))
        .where(Account.balance != total)
        .order_by(Account.id)
        .limit(cap)
        .tuples()
    )
    for code, unit, cached, summed in rows:
        yield f"account {code}: cached balance {cached} {unit} but its entries sum to {summed}"


def _negative_balances(cap: int):
    rows = (
        Account.select(Account.code, Account.unit, Account.balance)
        .where(~Account.may_go_negative & (Account.balance < 0))
        .order_by(Account.id)
        .limit(cap)
        .tuples()
    )
    for code, unit, held in rows:
        yield f"account {code} may not go negative but holds {held} {unit}"


def _zero_entries(cap: int):
    rows = Entry.select(Entry.id, Entry.journal).where(Entry.amount == 0)
    for entry_id, journal_id in rows.order_by(Entry.id).limit(cap).tuples():
        yield f"entry {entry_id} of journal {journal_id} has amount 0"


def _non_integers(cap: int):
    if is_postgres():
        return  # BIGINT columns cannot hold anything but integers there
    # SQLite stores whatever it is given: 1.5 written by hand into a BIGINT column stays 1.5.
    # coerce(False) shows the stored value instead of peewee's int() of it.
    fractional = Entry.select(Entry.id, Entry.journal, Entry.amount.coerce(False)).where(
        fn.typeof(Entry.amount) != "integer"
    )
    for entry_id, journal_id, amount in fractional.order_by(Entry.id).limit(cap).tuples():
        yield f"entry {entry_id} of journal {journal_id} has non-integer amount {amount!r}"
    balances = Account.select(Account.code, Account.balance.coerce(False)).where(
        fn.typeof(Account.balance) != "integer"
    )
    for code, held in balances.order_by(Account.id).limit(cap).tuples():
        yield f"account {code} has non-integer balance {held!r}"
