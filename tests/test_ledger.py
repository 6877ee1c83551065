"""The double-entry ledger (invariants 1 and 2): balanced, integer, never overdrawn, idempotent.

Every test runs on a SQLite file and, with SHOP_TEST_PG_URL set, on PostgreSQL: the overdraft
and idempotency guarantees rest on each database's locking, so both must prove them.
"""

import threading
import time
from decimal import Decimal

import pytest

from shop.db import db
from shop.ledger import (
    MONEY,
    POINTS,
    Account,
    Entry,
    IdempotencyConflict,
    InsufficientFunds,
    Journal,
    LedgerError,
    account,
    balance,
    check,
    post,
    system_account,
    transfer,
    user_account,
)

pytestmark = pytest.mark.pg


def fund(user_id: int, amount: int) -> Account:
    """A user's wallet holding `amount`, credited by the owner from equity."""
    wallet = user_account(user_id, "wallet")
    transfer(system_account("equity"), wallet, amount, "wallet.credit")
    return wallet


def counts() -> tuple[int, int]:
    return Journal.select().count(), Entry.select().count()


def in_threads(database, n: int, work):
    """Run `work(i)` in `n` threads released together, each on its own pooled connection.

    Returns (results, errors) with each exception kept as raised, so a test can tell a
    refused overdraft from a database error.
    """
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker(i):
        database.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=30)
            results.append(work(i))
        except Exception as exc:
            errors.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    return results, errors


def test_balanced_post_updates_balances_and_writes_one_journal(database):
    gateway = system_account("gateway:epay")
    escrow = system_account("escrow")
    wallet = fund(7, 1000)

    journal = post(
        [(gateway, -1500), (wallet, -500), (escrow, 2000)],
        "order.pay",
        memo="order K1 paid partly from wallet",
        ref="K1",
        actor=7,
    )

    assert (balance(gateway), balance(wallet), balance(escrow)) == (-1500, 500, 2000)
    stored = Journal.get_by_id(journal.id)
    assert (stored.kind, stored.ref, stored.actor_id) == ("order.pay", "K1", 7)
    amounts = sorted(e.amount for e in Entry.select().where(Entry.journal == journal.id))
    assert amounts == [-1500, -500, 2000]
    assert check() == []


@pytest.mark.parametrize(
    "case, make_entries, message",
    [
        ("unbalanced", lambda w, e, p, pool: [(w, -100), (e, 99)], "sum to zero"),
        ("float", lambda w, e, p, pool: [(w, -1.0), (e, 1.0)], "must be an int"),
        ("float whole", lambda w, e, p, pool: [(w, -100), (e, 100.0)], "must be an int"),
        ("decimal", lambda w, e, p, pool: [(w, Decimal(-1)), (e, Decimal(1))], "must be an int"),
        ("bool", lambda w, e, p, pool: [(w, -1), (e, True)], "must be an int"),
        ("zero", lambda w, e, p, pool: [(w, -100), (e, 100), (pool, 0)], "is 0"),
        ("single entry", lambda w, e, p, pool: [(e, 100)], "at least two entries"),
        ("no entries", lambda w, e, p, pool: [], "at least two entries"),
        ("units mixed", lambda w, e, p, pool: [(w, -100), (p, 100)], "sum to zero per unit"),
        ("not an account", lambda w, e, p, pool: [(w, -100), ("shop:escrow", 100)], "Account"),
    ],
)
def test_refused_post_writes_nothing(database, case, make_entries, message):
    wallet = fund(7, 1000)
    escrow = system_account("escrow")
    points = user_account(7, "points")
    pool = system_account("points_pool")
    before = counts()

    with pytest.raises(LedgerError, match=message):
        post(make_entries(wallet, escrow, points, pool), "order.pay", ref=case)

    assert counts() == before
    assert (balance(wallet), balance(escrow), balance(points), balance(pool)) == (1000, 0, 0, 0)


def test_transfer_refuses_a_non_positive_or_non_int_amount(database):
    wallet = fund(7, 1000)
    escrow = system_account("escrow")
    for amount in (0, -5, 5.0, True):
        with pytest.raises(LedgerError):
            transfer(wallet, escrow, amount, "order.pay")
    assert balance(wallet) == 1000


def test_overdraft_of_a_customer_wallet_is_refused_without_partial_writes(database):
    revenue = system_account("revenue")  # opened first: lower id, so updated before the wallet
    wallet = fund(7, 500)
    before = counts()

    with pytest.raises(InsufficientFunds, match="user:7:wallet") as refused:
        post([(revenue, 600), (wallet, -600)], "order.pay", idem_key="pay-K1")

    assert (refused.value.code, refused.value.balance, refused.value.delta) == (
        "user:7:wallet",
        500,
        -600,
    )
    assert counts() == before
    assert (balance(wallet), balance(revenue)) == (500, 0)
    assert Journal.get_or_none(Journal.idem_key == "pay-K1") is None
    # the same wallet can still spend exactly what it holds
    transfer(wallet, revenue, 500, "order.pay")
    assert balance(wallet) == 0
    assert check() == []


def test_system_accounts_may_go_negative_customer_accounts_and_escrow_may_not(database):
    gateway = system_account("gateway:epay")
    equity = system_account("equity")
    transfer(gateway, system_account("escrow"), 300, "order.pay")
    transfer(equity, user_account(7, "commission_available"), 50, "commission.adjust")
    assert (balance(gateway), balance(equity)) == (-300, -50)

    with pytest.raises(InsufficientFunds, match="shop:escrow"):
        transfer(system_account("escrow"), system_account("revenue"), 301, "order.settle")
    for kind in ("wallet", "points", "commission_pending", "withdrawal_pending"):
        customer = user_account(8, kind)
        source = system_account("points_pool" if customer.unit == POINTS else "equity")
        with pytest.raises(InsufficientFunds, match=f"user:8:{kind}"):
            transfer(customer, source, 1, "test.overdraft")
    assert check() == []


def test_idempotency_key_posts_once_and_refuses_a_different_posting(database):
    gateway = system_account("gateway:epay")
    escrow = system_account("escrow")

    first = post([(gateway, -990), (escrow, 990)], "order.pay", idem_key="epay:T1")
    again = post([(escrow, 990), (gateway, -990)], "order.pay", idem_key="epay:T1")

    assert again.id == first.id
    assert counts() == (1, 2)
    assert balance(escrow) == 990
    with pytest.raises(IdempotencyConflict, match="epay:T1"):
        post([(gateway, -1), (escrow, 1)], "order.pay", idem_key="epay:T1")
    assert counts() == (1, 2)


def test_post_nested_in_an_outer_transaction_that_rolls_back_leaves_nothing(database):
    wallet = fund(7, 1000)
    escrow = system_account("escrow")
    before = counts()

    with pytest.raises(RuntimeError), db.atomic():
        transfer(wallet, escrow, 400, "order.pay", idem_key="pay-K2")
        assert balance(wallet) == 600  # visible inside the transaction
        raise RuntimeError("the order service failed after paying")

    assert counts() == before
    assert (balance(wallet), balance(escrow)) == (1000, 0)
    assert Journal.get_or_none(Journal.idem_key == "pay-K2") is None


def test_refused_post_inside_an_outer_transaction_rolls_back_only_itself(database):
    wallet = fund(7, 1000)
    escrow = system_account("escrow")
    before = counts()

    with db.atomic():
        transfer(wallet, escrow, 400, "order.pay")
        with pytest.raises(InsufficientFunds):
            transfer(wallet, escrow, 601, "order.pay")
        transfer(wallet, escrow, 100, "order.pay")

    assert counts() == (before[0] + 2, before[1] + 4)
    assert (balance(wallet), balance(escrow)) == (500, 500)
    assert check() == []


def test_points_are_a_unit_of_their_own(database):
    wallet = fund(7, 1000)
    points = user_account(7, "points")
    pool = system_account("points_pool")
    escrow = system_account("escrow")
    transfer(pool, points, 300, "points.referral")

    # one checkout paying 9.00 in money and redeeming 100 points: balanced per unit
    post([(wallet, -900), (escrow, 900), (points, -100), (pool, 100)], "order.pay", ref="K3")
    assert (balance(wallet), balance(escrow), balance(points), balance(pool)) == (
        100,
        900,
        200,
        -200,
    )

    # sums to zero overall but not per unit: 100 points are not 1.00 yuan
    with pytest.raises(LedgerError, match="sum to zero per unit"):
        post([(points, -100), (escrow, 100)], "order.pay")
    with pytest.raises(LedgerError, match="sum to zero per unit"):
        post([(wallet, -100), (escrow, 50), (pool, 50)], "order.pay")
    assert balance(points) == 200
    assert check() == []


def test_accounts_are_opened_once_and_must_match(database):
    wallet = user_account(7, "wallet")
    assert (wallet.code, wallet.kind, wallet.unit, wallet.owner_id) == (
        "user:7:wallet",
        "wallet",
        MONEY,
        7,
    )
    assert not wallet.may_go_negative
    assert user_account(7, "wallet").id == wallet.id
    assert user_account(7, "points").unit == POINTS
    assert system_account("escrow").code == "shop:escrow"
    gateway = system_account("gateway:epay")
    assert (gateway.code, gateway.kind, gateway.may_go_negative) == (
        "gateway:epay",
        "gateway",
        True,
    )
    assert system_account("supplier_payable:3").kind == "supplier_payable"

    with pytest.raises(LedgerError, match="exists as"):
        account("user:7:wallet", "wallet", POINTS, owner_id=7)
    with pytest.raises(LedgerError, match="unknown user account kind"):
        user_account(7, "walet")
    with pytest.raises(LedgerError, match="unknown system account"):
        system_account("escrw")
    with pytest.raises(LedgerError, match="unknown unit"):
        account("shop:usd", "revenue", "USD")
    assert Account.select().count() == 5


def test_check_finds_corruption_made_behind_the_ledgers_back(database):
    wallet = fund(7, 1000)
    escrow = system_account("escrow")
    transfer(wallet, escrow, 300, "order.pay")
    assert check() == []

    Account.update(balance=Account.balance + 50).where(Account.id == wallet.id).execute()
    p = db.param
    db.execute_sql(
        f"INSERT INTO journal (kind, memo, ref, created_at) VALUES ({p}, '', '', {p})",
        ("hand.made", wallet.created_at),
    )
    journal_id = Journal.get(Journal.kind == "hand.made").id
    db.execute_sql(
        "INSERT INTO entry (journal_id, account_id, amount, created_at) "
        f"VALUES ({p}, {p}, {p}, {p})",
        (journal_id, escrow.id, 25, wallet.created_at),
    )
    empty = Journal.create(kind="hand.empty")
    overdrawn = user_account(9, "wallet")
    Account.update(balance=-5).where(Account.id == overdrawn.id).execute()

    problems = check()

    assert (
        f"journal {journal_id} (hand.made) does not balance: its CNY entries sum to 25" in problems
    )
    assert "account user:7:wallet: cached balance 750 CNY but its entries sum to 700" in problems
    assert "account shop:escrow: cached balance 300 CNY but its entries sum to 325" in problems
    assert f"journal {empty.id} (hand.empty) has no entries" in problems
    assert "account user:9:wallet may not go negative but holds -5 CNY" in problems
    assert len(problems) == 6, problems  # user:9:wallet is also stale: -5 vs no entries


def test_check_finds_zero_and_non_integer_amounts(database, db_backend):
    wallet = fund(7, 1000)
    escrow = system_account("escrow")
    journal = transfer(wallet, escrow, 300, "order.pay")
    Entry.update(amount=0).where(
        (Entry.journal == journal.id) & (Entry.account == escrow.id)
    ).execute()
    Entry.update(amount=0).where(
        (Entry.journal == journal.id) & (Entry.account == wallet.id)
    ).execute()

    problems = check()

    assert sum("has amount 0" in p for p in problems) == 2
    if db_backend == "sqlite":  # PostgreSQL's BIGINT cannot store a fraction in the first place
        # raw SQL: peewee's BigIntegerField would itself turn 0.5 into 0
        db.execute_sql("UPDATE entry SET amount = 0.5 WHERE journal_id = ?", (journal.id,))
        db.execute_sql("UPDATE account SET balance = 699.5 WHERE id = ?", (wallet.id,))
        problems = check()
        assert sum("non-integer amount 0.5" in p for p in problems) == 2
        assert "account user:7:wallet has non-integer balance 699.5" in problems


def test_check_caps_each_rule_at_its_limit(database):
    for user_id in range(1, 5):
        wallet = user_account(user_id, "wallet")
        Account.update(balance=1).where(Account.id == wallet.id).execute()
    problems = check(limit=3)
    assert len(problems) == 4
    assert problems[-1].startswith("... more problems")


def test_concurrent_spending_never_overdraws_a_wallet(database):
    wallet = fund(7, 1000)
    escrow = system_account("escrow")

    results, errors = in_threads(
        database, 20, lambda i: transfer(wallet, escrow, 100, "order.pay", ref=f"K{i}")
    )

    assert len(results) == 10
    assert len(errors) == 10 and all(isinstance(e, InsufficientFunds) for e in errors), errors
    assert (balance(wallet), balance(escrow)) == (0, 1000)
    assert check() == []


def test_concurrent_posts_with_one_idempotency_key_write_one_journal(database):
    gateway = system_account("gateway:epay")
    escrow = system_account("escrow")

    results, errors = in_threads(
        database,
        12,
        lambda i: post([(gateway, -500), (escrow, 500)], "order.pay", idem_key="epay:T9").id,
    )

    assert errors == []
    assert len(set(results)) == 1 and len(results) == 12
    assert Journal.select().where(Journal.idem_key == "epay:T9").count() == 1
    assert balance(escrow) == 500
    assert check() == []


def test_a_key_committed_while_a_retry_waits_returns_the_winners_journal(database):
    """The retry passes its lookup before the first posting commits, then meets the key:
    on PostgreSQL its insert waits on the unique index and fails when the winner commits."""
    gateway = system_account("gateway:epay")
    escrow = system_account("escrow")
    entries = [(gateway, -700), (escrow, 700)]
    posted, release = threading.Event(), threading.Event()
    outcome = {}

    def winner():
        database.connect(reuse_if_open=True)
        try:
            with db.atomic():
                outcome["winner"] = post(entries, "order.pay", idem_key="epay:T5").id
                posted.set()
                release.wait(timeout=30)
        finally:
            database.close()

    def retry():
        database.connect(reuse_if_open=True)
        try:
            outcome["retry"] = post(entries, "order.pay", idem_key="epay:T5").id
        except Exception as exc:
            outcome["retry"] = exc
        finally:
            database.close()

    first = threading.Thread(target=winner)
    first.start()
    assert posted.wait(timeout=30)
    second = threading.Thread(target=retry)
    second.start()
    time.sleep(0.5)  # let the retry reach the database and block there
    assert "retry" not in outcome
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)

    assert outcome["retry"] == outcome["winner"]
    assert balance(escrow) == 700
    assert check() == []


def test_concurrent_opening_of_one_account_yields_one_row(database):
    results, errors = in_threads(database, 12, lambda i: user_account(42, "wallet").id)
    assert errors == []
    assert len(set(results)) == 1
    assert Account.select().where(Account.code == "user:42:wallet").count() == 1


def test_postings_crossing_the_same_accounts_in_both_directions_do_not_deadlock(database):
    """Each posting locks its accounts in one order, whatever order its entries are listed in."""
    epay = system_account("gateway:epay")
    alipay = system_account("gateway:alipay")

    def work(i):
        for n in range(25):
            src, dst = (epay, alipay) if (i + n) % 2 else (alipay, epay)
            post([(src, -1), (dst, 1)], "gateway.rebalance", ref=f"{i}.{n}")
        return i

    results, errors = in_threads(database, 8, work)

    assert errors == []
    assert len(results) == 8
    assert balance(epay) + balance(alipay) == 0
    assert check() == []


def test_a_transaction_holding_escrow_across_buyers_does_not_deadlock_with_a_payment(database):
    """A group commit pays many buyers into escrow in one transaction. A payment by one of
    them from elsewhere meanwhile must wait for escrow before it locks its wallet: with the
    wallet locked first (its id is older than escrow's), the group would wait for the wallet
    and the payment for escrow until PostgreSQL broke the deadlock by failing one."""
    early, late = fund(1, 1000), fund(2, 1000)  # both wallets older than escrow
    escrow = system_account("escrow")
    group_paid_one, payment_started = threading.Event(), threading.Event()

    def group():
        with db.atomic():
            transfer(late, escrow, 100, "order.pay", ref="group-1")
            group_paid_one.set()
            assert payment_started.wait(10)
            time.sleep(0.3)  # the payment is now waiting on a lock
            transfer(early, escrow, 100, "order.pay", ref="group-2")
        return "group"

    def payment():
        assert group_paid_one.wait(10)
        payment_started.set()
        transfer(early, escrow, 100, "order.pay", ref="payment")
        return "payment"

    results, errors = in_threads(database, 2, lambda i: (group, payment)[i]())

    assert errors == []
    assert sorted(results) == ["group", "payment"]
    assert balance(early) == 800 and balance(late) == 900 and balance(escrow) == 300


def test_an_account_opened_in_a_rolled_back_transaction_is_not_remembered(database):
    """Account lookups are cached per process; an account whose creation rolled back must
    not be served from that cache afterwards."""
    from shop.ledger import user_account

    class Boom(Exception):
        pass

    try:
        with database.atomic():
            ghost = user_account(4242, "wallet")
            raise Boom
    except Boom:
        pass
    assert Account.get_or_none(Account.id == ghost.id) is None
    again = user_account(4242, "wallet")
    assert Account.get_by_id(again.id).code == "user:4242:wallet"
