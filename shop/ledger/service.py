"""Posting to the ledger: the one way any balance changes.

`post()` validates everything before it touches the database, then writes the journal, moves
the cached balances and writes the entries inside one `db.atomic()` block. Called inside a
caller's transaction that block is a savepoint, so an order service can pay, settle and audit
in one transaction and a refused posting rolls back only itself.

Balances move by a conditional UPDATE (`... WHERE id = ? AND (may_go_negative OR balance +
delta >= 0)`) instead of read-check-write, so the database itself refuses an overdraft even when
many requests spend from one wallet at once: on PostgreSQL the second writer waits on the row
lock and re-evaluates the condition against the committed balance; on SQLite writers queue on
BEGIN IMMEDIATE. Accounts are updated in one fixed order, so two postings touching the same
accounts lock them in the same order and cannot deadlock: the shop's own accounts first (escrow,
revenue, ...), then users' accounts, each by id. Shop accounts first matters on PostgreSQL,
where a group commit (`shop.group_commit`) holds escrow across many buyers' postings: a posting
that waits for escrow then holds no wallet the group may want next.
"""

from collections import Counter

from shop.clock import now
from shop.db import db, run
from shop.ledger.errors import IdempotencyConflict, InsufficientFunds, LedgerError
from shop.ledger.models import Account, Entry, Journal

MAX_AMOUNT = 2**63 - 1  # what a BIGINT column holds
_LIMITS = {"kind": 64, "memo": 255, "ref": 64, "idem_key": 128}


def post(
    entries,
    kind: str,
    memo: str = "",
    ref: str = "",
    idem_key: str | None = None,
    actor=None,
) -> Journal:
    """Write one balanced journal of `entries`, a list of `(account, amount)` pairs.

    Refused with `LedgerError`, writing nothing, when an amount is not a plain `int` or is 0,
    there are fewer than two entries, or the amounts of some unit do not sum to zero. Raises
    `InsufficientFunds` when an account that may not go negative would; the whole posting then
    rolls back. With `idem_key`, a key that already posted returns that journal and writes
    nothing (`IdempotencyConflict` if it posted something different). `actor` is a user or a
    user id.
    """
    lines = _validated(entries)
    _check_text(kind=kind, memo=memo, ref=ref)
    if not kind:
        raise LedgerError("a journal needs a kind, e.g. 'order.pay'")
    if idem_key is not None:
        if not isinstance(idem_key, str) or not idem_key:
            raise LedgerError("idem_key must be a non-empty string or None")
        _check_text(idem_key=idem_key)
    created = now()
    actor_id = getattr(actor, "id", actor)
    with db.atomic():
        journal_id = _insert_journal(kind, memo, ref, idem_key, actor_id, created)
        if journal_id is None:
            # The key posted before, or another transaction committed it meanwhile (on
            # PostgreSQL the insert waited for it): nothing was written, the first stands.
            return _replayed(Journal.get(Journal.idem_key == idem_key), kind, lines)
        _move_balances(lines)
        values = ", ".join("(?, ?, ?, ?)" for _ in lines)
        params = [x for acct, amount in lines for x in (journal_id, acct.id, amount, created)]
        run(
            f'INSERT INTO "entry" ("journal_id", "account_id", "amount", "created_at") '
            f"VALUES {values}",
            params,
        )
    return Journal(
        id=journal_id,
        kind=kind,
        memo=memo,
        ref=ref,
        idem_key=idem_key,
        actor_id=actor_id,
        created_at=created,
    )


def _insert_journal(kind, memo, ref, idem_key, actor_id, created) -> int | None:
    """The new journal's id, or None when `idem_key` has posted already. The clash is
    skipped rather than raised, so a new key (nearly always) costs one statement and no
    savepoint, and a repeat costs one SELECT more."""
    row = run(
        'INSERT INTO "journal" ("kind", "memo", "ref", "idem_key", "actor_id", "created_at") '
        'VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT ("idem_key") DO NOTHING RETURNING "id"',
        (kind, memo, ref, idem_key, actor_id, created),
    ).fetchone()
    return row[0] if row else None


def transfer(
    src: Account,
    dst: Account,
    amount: int,
    kind: str,
    memo: str = "",
    ref: str = "",
    idem_key: str | None = None,
    actor=None,
) -> Journal:
    """Move a positive `amount` from `src` to `dst` in one two-entry journal."""
    if type(amount) is not int or amount <= 0:
        raise LedgerError(f"a transfer amount must be a positive int, not {amount!r}")
    return post(
        [(src, -amount), (dst, amount)], kind, memo=memo, ref=ref, idem_key=idem_key, actor=actor
    )


def balance(account: Account) -> int:
    """The account's balance as stored now, not as cached on the (possibly stale) instance."""
    value = Account.select(Account.balance).where(Account.id == account.id).scalar()
    if value is None:
        raise LedgerError(f"no such account: {account}")
    return value


def _validated(entries) -> list[tuple[Account, int]]:
    lines = list(entries)
    if len(lines) < 2:
        raise LedgerError(f"a journal needs at least two entries, got {len(lines)}")
    per_unit = Counter()
    for line in lines:
        if not (isinstance(line, tuple) and len(line) == 2):
            raise LedgerError(f"an entry is an (account, amount) pair, not {line!r}")
        acct, amount = line
        if not isinstance(acct, Account) or acct.id is None:
            raise LedgerError(f"an entry's account must be a saved Account, not {acct!r}")
        # type() rather than isinstance(): bool is an int subclass and True is not one fen
        if type(amount) is not int:
            raise LedgerError(
                f"amount for {acct.code} must be an int of minor units, "
                f"not {type(amount).__name__} {amount!r}"
            )
        if amount == 0:
            raise LedgerError(f"amount for {acct.code} is 0: leave the entry out")
        if abs(amount) > MAX_AMOUNT:
            raise LedgerError(f"amount for {acct.code} is out of range: {amount}")
        per_unit[acct.unit] += amount
    unbalanced = {unit: total for unit, total in per_unit.items() if total != 0}
    if unbalanced:
        detail = ", ".join(f"{unit} off by {total}" for unit, total in sorted(unbalanced.items()))
        raise LedgerError(f"entries must sum to zero per unit: {detail}")
    return lines


def _check_text(**fields) -> None:
    for name, value in fields.items():
        if not isinstance(value, str):
            raise LedgerError(f"{name} must be a string, not {value!r}")
        if len(value) > _LIMITS[name]:
            raise LedgerError(f"{name} is longer than {_LIMITS[name]} characters")


def _move_balances(lines) -> None:
    deltas = Counter()
    accounts = {}
    for acct, amount in lines:
        deltas[acct.id] += amount
        accounts[acct.id] = acct
    for account_id in sorted(deltas, key=lambda i: (accounts[i].owner_id is not None, i)):
        delta = deltas[account_id]
        if delta == 0:
            continue
        moved = run(
            'UPDATE "account" SET "balance" = "balance" + ? '
            'WHERE "id" = ? AND ("may_go_negative" OR "balance" + ? >= 0)',
            (delta, account_id, delta),
        ).rowcount
        if moved != 1:
            acct = accounts[account_id]
            held = Account.select(Account.balance).where(Account.id == account_id).scalar()
            if held is None:
                raise LedgerError(f"no such account: {acct.code}")
            raise InsufficientFunds(acct.code, acct.unit, delta, held)


def _replayed(journal: Journal, kind: str, lines) -> Journal:
    """The journal a repeated idempotency key already wrote, if the repeat asks the same."""
    stored = sorted(
        (e.account_id, e.amount)
        for e in Entry.select(Entry.account, Entry.amount).where(Entry.journal == journal.id)
    )
    asked = sorted((acct.id, amount) for acct, amount in lines)
    if journal.kind != kind or stored != asked:
        raise IdempotencyConflict(
            f"idem_key {journal.idem_key!r} already posted journal {journal.id} "
            f"({journal.kind}) with different entries"
        )
    return journal
