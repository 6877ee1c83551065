"""The `withdrawals` commands: list (masked), approve, pay, reject; bad input is exit 2 with
a JSON error and nothing changed."""

import json

import pytest
from withdrawing import ACCOUNT, MASKED, balances, referrer_with_commission, requested, stored


@pytest.fixture
def referrer(app, owner):
    return referrer_with_commission(app)


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args):
        result = runner.invoke(args=["shop", "withdrawals", *args, "--json"])
        return result.exit_code, json.loads(result.stdout)

    return run


def test_cli_list_approve_pay(app, cli, referrer):
    first, second = requested(app, referrer, 1000), requested(app, referrer, 1500)
    code, out = cli("list")
    assert code == 0 and [w["id"] for w in out["withdrawals"]] == [second, first]
    assert out["withdrawals"][0]["payee_account"] == MASKED
    assert ACCOUNT not in json.dumps(out, ensure_ascii=False)

    code, out = cli("approve", str(first))
    assert code == 0 and out["status"] == "approved" and out["amount"] == 1000
    code, out = cli("list", "--status", "approved")
    assert [w["id"] for w in out["withdrawals"]] == [first]
    code, out = cli("pay", f"W{first}", "--reference", "BANK-1")
    assert code == 0
    assert (out["status"], out["reference"], out["payout"]) == ("paid", "BANK-1", 1000)
    assert balances(app, referrer)["payout"] == 1000


def test_cli_reject(app, cli, referrer):
    wid = requested(app, referrer, 1000)
    code, out = cli("reject", str(wid), "--reason", "Duplicate")
    assert code == 0 and (out["status"], out["reason"]) == ("rejected", "Duplicate")
    assert balances(app, referrer)["commission_available"] == 5000


@pytest.mark.parametrize(
    "args, code_name, message",
    [
        (["list", "--status", "done"], "bad_input", "unknown status"),
        (["approve", "42"], "not_found", "no withdrawal 42"),
        (["approve", "abc"], "not_found", "no withdrawal abc"),
        (["reject", "{wid}"], "bad_input", "Give the reason"),
        (["pay", "{wid}"], "bad_input", "Only an approved withdrawal"),
    ],
)
def test_cli_bad_input_is_exit_2_and_changes_nothing(app, cli, referrer, args, code_name, message):
    wid = requested(app, referrer, 1000)
    before = balances(app, referrer)
    code, out = cli(*[a.format(wid=wid) for a in args])
    assert code == 2
    assert out["error"]["code"] == code_name and message in out["error"]["message"]
    assert stored(app) == [(wid, "requested", 1000, "", "")]
    assert balances(app, referrer) == before
