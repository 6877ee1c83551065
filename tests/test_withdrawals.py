"""Withdrawals through the service layer: request, approve, pay, reject, move to the wallet;
each step checked against the ledger to the fen, refusals leave everything as it was, and
races (many requests on one balance, many staff paying one withdrawal) on SQLite and
PostgreSQL."""

import json

import pytest
from selling import customer
from test_ledger import in_threads

from shop import crypto, invariants, ledger, settings
from shop.audit.models import AuditLog
from shop.crypto import looks_encrypted
from shop.ledger.models import Entry, Journal
from shop.settings import service as settings_service
from shop.withdrawals import checks
from shop.withdrawals import service as withdrawals
from shop.withdrawals.models import Withdrawal
from shop.withdrawals.service import WithdrawalConflict, WithdrawalError

PAYEE, ACCOUNT = "王小明", "6222021234567890123"


@pytest.fixture(autouse=True)
def keyring_and_fresh_settings():
    crypto.configure(b"k" * 32)
    settings_service.invalidate()  # the cache must not carry another test's fee settings
    yield
    settings_service.invalidate()


def earner(email="referrer@example.com", commission=5000):
    """A user holding `commission` fen of available commission. The commission engine is
    another area's; here the shop's revenue credits it straight through the ledger."""
    user = customer(email)
    if commission:
        ledger.transfer(
            ledger.system_account("revenue"),
            ledger.user_account(user.id, "commission_available"),
            commission,
            "test.commission",
        )
    return user


def ask(user, amount, method="alipay", payee=PAYEE, account=ACCOUNT):
    return withdrawals.request(user, amount, method, payee, account)


def money(user) -> dict:
    """Everything a withdrawal can move: the user's three balances and the shop's two."""
    return {
        **withdrawals.balances(user),
        "wallet": ledger.balance(ledger.user_account(user.id, "wallet")),
        "payout": ledger.balance(ledger.system_account("payout")),
        "revenue": ledger.balance(ledger.system_account("revenue")),
    }


def written() -> tuple[int, int, int, int]:
    return (
        Withdrawal.select().count(),
        Journal.select().count(),
        Entry.select().count(),
        AuditLog.select().where(AuditLog.action.startswith("withdrawal.")).count(),
    )


def healthy():
    problems = {k: v for k, v in invariants.run_all().items() if v}
    assert problems == {}


def test_approve_then_pay_moves_payout_and_fee_exactly(database):
    settings.set_value("withdrawal.fee_bps", "150")  # 1.5%
    staff = customer("staff@example.com")
    user = earner(commission=5000)
    revenue_before = money(user)["revenue"]

    w = ask(user, 3000)
    assert (w.amount, w.fee, w.payout, w.status) == (3000, 45, 2955, "requested")
    after_request = money(user)
    assert (after_request["commission_available"], after_request["withdrawal_pending"]) == (
        2000,
        3000,
    )

    withdrawals.approve(w, staff)
    assert money(user) == after_request  # approving moves no money
    withdrawals.mark_paid(w, staff, " ALIPAY-2024-0001 ")

    stored = Withdrawal.get_by_id(w.id)
    assert (stored.status, stored.reference) == ("paid", "ALIPAY-2024-0001")
    assert (stored.decided_by, stored.paid_by) == (staff.id, staff.id)
    assert stored.decided_at <= stored.paid_at
    assert money(user) == {
        "commission_available": 2000,
        "withdrawal_pending": 0,
        "wallet": 0,
        "payout": 2955,
        "revenue": revenue_before + 45,
    }
    paid = Journal.get(Journal.kind == "withdrawal.paid")
    assert paid.ref == f"W{w.id}" and paid.actor_id == staff.id
    lines = sorted(
        (e.account.code, e.amount) for e in Entry.select().where(Entry.journal == paid.id)
    )
    assert lines == [
        ("shop:payout", 2955),
        ("shop:revenue", 45),
        (f"user:{user.id}:withdrawal_pending", -3000),
    ]
    approved, paid_audit = AuditLog.select().order_by(AuditLog.id)[-2:]
    assert (approved.action, paid_audit.action) == ("withdrawal.approve", "withdrawal.paid")
    assert approved.actor_id == paid_audit.actor_id == staff.id
    assert json.loads(paid_audit.detail) == {
        "fee": 45,
        "payout": 2955,
        "reference": "ALIPAY-2024-0001",
    }
    healthy()


def test_without_a_fee_the_whole_amount_is_paid_out(database):
    user = earner(commission=1000)
    w = withdrawals.approve(ask(user, 1000), None)
    withdrawals.mark_paid(w, None)
    paid = Journal.get(Journal.kind == "withdrawal.paid")
    assert Entry.select().where(Entry.journal == paid.id).count() == 2  # no 0-fee entry
    assert money(user)["payout"] == 1000
    healthy()


@pytest.mark.parametrize(
    "bps, minimum, amount, fee",
    [
        (0, 0, 1000, 0),
        (100, 0, 1050, 11),  # 10.50 fen rounds up: a rate never rounds down to nothing
        (100, 0, 1000, 10),
        (100, 200, 1000, 200),  # the minimum fee wins
        (10000, 0, 1000, 1000),  # the whole amount: refused on request
    ],
)
def test_fee_is_the_rate_rounded_up_but_at_least_the_minimum(database, bps, minimum, amount, fee):
    settings.set_value("withdrawal.fee_bps", str(bps))
    settings.set_value("withdrawal.fee_min", str(minimum))
    assert withdrawals.fee_for(amount) == fee


@pytest.mark.parametrize("from_status", ["requested", "approved"])
def test_reject_returns_the_money_and_keeps_the_reason(database, from_status):
    staff = customer("staff@example.com")
    user = earner(commission=5000)
    before = money(user)
    w = ask(user, 2500)
    if from_status == "approved":
        withdrawals.approve(w, staff)

    withdrawals.reject(w, staff, "  The account name does not match.  ")

    stored = Withdrawal.get_by_id(w.id)
    assert (stored.status, stored.reason) == ("rejected", "The account name does not match.")
    assert stored.decided_by == staff.id and stored.paid_at is None
    assert money(user) == before
    back = Journal.get(Journal.kind == "withdrawal.rejected")
    assert back.ref == f"W{w.id}"
    audit = AuditLog.get(AuditLog.action == "withdrawal.reject")
    assert audit.actor_id == staff.id and "does not match" in audit.detail
    healthy()


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_reject_needs_a_reason_of_sensible_length(database, reason):
    user = earner()
    w = ask(user, 2000)
    before, counts = money(user), written()
    with pytest.raises(WithdrawalError, match="reason"):
        withdrawals.reject(w, None, reason)
    assert Withdrawal.get_by_id(w.id).status == "requested"
    assert (money(user), written()) == (before, counts)


@pytest.mark.parametrize(
    "amount, extra, message",
    [
        (999, {}, "smallest withdrawal is 10.00"),
        (5001, {}, "You have 50.00 of commission available"),
        (0, {}, "more than zero"),
        (-1000, {}, "more than zero"),
        (1000.0, {}, "more than zero"),
        (True, {}, "more than zero"),
        ("1000", {}, "more than zero"),
        (1000, {"method": "paypal"}, "how you want to be paid"),
        (1000, {"payee": "  "}, "payee's name"),
        (1000, {"account": ""}, "account to pay into"),
        (1000, {"payee": "x" * 51}, "at most 50"),
        (1000, {"account": "1" * 101}, "at most 100"),
        (1000, {"account": "6222\n0212"}, "line breaks"),
    ],
)
def test_refused_requests_change_nothing(database, amount, extra, message):
    user = earner(commission=5000)
    before, counts = money(user), written()
    with pytest.raises(WithdrawalError, match=message):
        ask(user, amount, **extra)
    assert (money(user), written()) == (before, counts)
    healthy()


def test_a_fee_that_takes_everything_is_refused(database):
    settings.set_value("withdrawal.fee_min", "1000")
    user = earner()
    counts = written()
    with pytest.raises(WithdrawalError, match="fee of 10.00 would take the whole amount"):
        ask(user, 1000)
    assert written() == counts
    assert ask(user, 1001).payout == 1


def test_the_minimum_is_a_setting(database):
    settings.set_value("withdrawal.min_amount", "5000")
    user = earner(commission=9000)
    with pytest.raises(WithdrawalError, match="smallest withdrawal is 50.00"):
        ask(user, 4999)
    assert ask(user, 5000).status == "requested"


def test_nobody_without_commission_can_withdraw(database):
    user = earner(commission=0)
    with pytest.raises(WithdrawalError, match="You have 0.00 of commission available"):
        ask(user, 1000)
    assert written()[0] == 0


@pytest.mark.parametrize(
    "setup, step",
    [
        ("requested", lambda w: withdrawals.mark_paid(w, None)),
        ("approved", lambda w: withdrawals.approve(w, None)),
        ("paid", lambda w: withdrawals.approve(w, None)),
        ("paid", lambda w: withdrawals.mark_paid(w, None)),
        ("paid", lambda w: withdrawals.reject(w, None, "too late")),
        ("rejected", lambda w: withdrawals.approve(w, None)),
        ("rejected", lambda w: withdrawals.mark_paid(w, None)),
        ("rejected", lambda w: withdrawals.reject(w, None, "again")),
    ],
)
def test_steps_out_of_order_are_refused_with_409(database, setup, step):
    user = earner()
    w = ask(user, 2000)
    if setup in ("approved", "paid"):
        withdrawals.approve(w, None)
    if setup == "paid":
        withdrawals.mark_paid(w, None)
    if setup == "rejected":
        withdrawals.reject(w, None, "no")
    before, counts = money(user), written()

    with pytest.raises(WithdrawalConflict, match=f"withdrawal {w.id} is {setup}") as refused:
        step(Withdrawal.get_by_id(w.id))

    assert refused.value.status == 409
    assert Withdrawal.get_by_id(w.id).status == setup
    assert (money(user), written()) == (before, counts)
    healthy()


def test_a_stale_copy_cannot_pay_a_rejected_withdrawal(database):
    """Staff opened the page while it was approved; someone rejected it meanwhile."""
    user = earner()
    w = withdrawals.approve(ask(user, 2000), None)
    stale = Withdrawal.get_by_id(w.id)
    withdrawals.reject(w, None, "duplicate request")
    with pytest.raises(WithdrawalConflict):
        withdrawals.mark_paid(stale, None)
    assert money(user)["payout"] == 0 and money(user)["commission_available"] == 5000
    healthy()


def test_payee_is_stored_encrypted_and_shown_masked(database):
    user = earner()
    w = ask(user, 2000, payee=PAYEE, account=ACCOUNT)
    raw = Withdrawal.select(
        Withdrawal.payee_name.coerce(False), Withdrawal.payee_account.coerce(False)
    ).where(Withdrawal.id == w.id)
    name, account = raw.tuples().get()
    assert looks_encrypted(name) and looks_encrypted(account)
    assert PAYEE not in name and ACCOUNT not in account and "62220212" not in account
    stored = Withdrawal.get_by_id(w.id)
    assert (stored.payee_name, stored.payee_account) == (PAYEE, ACCOUNT)
    shown = withdrawals.masked(stored)
    assert shown["payee_account"] == "62***************23"
    assert ACCOUNT not in str(withdrawals.as_json(stored))
    email = ask(user, 2000, account="wang.xm@example.com")
    assert withdrawals.masked(email)["payee_account"] == "w***@example.com"


def test_reveal_writes_the_audit_record(database):
    staff = customer("staff@example.com")
    w = ask(earner(), 2000)
    assert withdrawals.reveal(w, staff) == {"payee_name": PAYEE, "payee_account": ACCOUNT}
    audit = AuditLog.get(AuditLog.action == "withdrawal.reveal")
    assert (audit.actor_id, audit.target) == (staff.id, f"withdrawal:{w.id}")


def test_move_the_whole_commission_to_the_wallet(database):
    user = earner(commission=3456)
    assert withdrawals.commission_to_wallet(user) == 3456
    assert money(user)["commission_available"] == 0 and money(user)["wallet"] == 3456
    journal = Journal.get(Journal.kind == "commission.to_wallet")
    assert journal.actor_id == user.id
    with pytest.raises(WithdrawalError, match="no commission available"):
        withdrawals.commission_to_wallet(user)
    healthy()


def test_move_part_of_the_commission_and_never_more_than_there_is(database):
    user = earner(commission=3000)
    assert withdrawals.commission_to_wallet(user, 1000) == 1000
    counts = written()
    for amount in (2001, 0, -5, 10.0):
        with pytest.raises(WithdrawalError):
            withdrawals.commission_to_wallet(user, amount)
    assert written() == counts
    assert money(user)["commission_available"] == 2000 and money(user)["wallet"] == 1000
    healthy()


def test_pending_withdrawals_cannot_be_moved_to_the_wallet(database):
    user = earner(commission=3000)
    ask(user, 2000)
    assert withdrawals.commission_to_wallet(user) == 1000
    assert money(user)["withdrawal_pending"] == 2000
    healthy()


@pytest.mark.pg
def test_concurrent_requests_cannot_overdraw(database):
    """Twelve requests of 10.00 against 50.00: five succeed, seven are refused, whatever the
    interleaving, on each database's own locking."""
    user = earner(commission=5000)

    results, errors = in_threads(database, 12, lambda i: ask(user, 1000, payee=f"P{i}").id)

    assert len(results) == 5 and len(set(results)) == 5
    assert len(errors) == 7 and all(isinstance(e, WithdrawalError) for e in errors), errors
    assert all("commission available" in str(e) for e in errors)
    assert Withdrawal.select().count() == 5
    assert withdrawals.balances(user) == {"commission_available": 0, "withdrawal_pending": 5000}
    healthy()


@pytest.mark.pg
def test_concurrent_mark_paid_pays_once(database):
    user = earner(commission=5000)
    w = withdrawals.approve(ask(user, 4000), None)

    def pay(i):
        return withdrawals.mark_paid(Withdrawal.get_by_id(w.id), i + 1, f"ref-{i}").status

    results, errors = in_threads(database, 10, pay)

    assert results == ["paid"]
    assert len(errors) == 9 and all(isinstance(e, WithdrawalConflict) for e in errors), errors
    assert Journal.select().where(Journal.kind == "withdrawal.paid").count() == 1
    assert money(user)["payout"] == 4000 and money(user)["withdrawal_pending"] == 0
    healthy()


@pytest.mark.pg
def test_paying_and_rejecting_at_once_does_one_of_them(database):
    user = earner(commission=5000)
    w = withdrawals.approve(ask(user, 4000), None)

    def act(i):
        fresh = Withdrawal.get_by_id(w.id)
        if i % 2:
            return withdrawals.reject(fresh, i + 1, "changed my mind").status
        return withdrawals.mark_paid(fresh, i + 1).status

    results, errors = in_threads(database, 10, act)

    assert len(results) == 1 and len(errors) == 9
    assert all(isinstance(e, WithdrawalConflict) for e in errors), errors
    final = Withdrawal.get_by_id(w.id).status
    assert results == [final]
    expected_payout = 4000 if final == "paid" else 0
    assert money(user)["payout"] == expected_payout
    assert money(user)["commission_available"] == 5000 - expected_payout
    healthy()


def test_audit_finds_pending_money_that_matches_no_withdrawal(database):
    user = earner(commission=5000)
    ask(user, 2000)
    assert checks.pending_matches_open() == []
    ledger.transfer(
        ledger.user_account(user.id, "commission_available"),
        ledger.user_account(user.id, "withdrawal_pending"),
        700,
        "test.stray",
    )
    assert checks.pending_matches_open() == [
        f"user {user.id}: withdrawal_pending holds 2700 but open withdrawals add up to 2000"
    ]


def test_audit_finds_a_withdrawal_without_its_journals(database):
    user = earner(commission=5000)
    w = withdrawals.approve(ask(user, 2000), None)
    Withdrawal.update(status="paid").where(Withdrawal.id == w.id).execute()  # no payout posted
    problems = checks.journals_match()
    assert len(problems) == 1 and problems[0].startswith(f"withdrawal {w.id} (paid) of 2000")
    assert "0 paid journals" in problems[0]
    # its money never left withdrawal_pending, though nothing is open any more
    assert checks.pending_matches_open() == [
        f"user {user.id}: withdrawal_pending holds 2000 but open withdrawals add up to 0"
    ]


def test_audit_finds_an_open_withdrawal_with_no_pending_account(database):
    ask(earner(commission=5000), 2000)
    Withdrawal.create(
        user=earner("other@example.com", 0).id,
        amount=1500,
        fee=0,
        payout=1500,
        method="bank",
        payee_name="X",
        payee_account="Y",
    )
    problems = checks.pending_matches_open()
    assert len(problems) == 1 and "no withdrawal_pending" in problems[0]
