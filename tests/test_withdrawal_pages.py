"""Withdrawals on screen: the referrer's page (request, history, move to the wallet) and the
admin queue (masked payee, audited reveal, approve, pay, reject); refusals are 4xx with a
message and nothing changed."""

import pytest
from conftest import csrf_from, login, submit
from withdrawing import (
    ACCOUNT,
    MASKED,
    REFERRER,
    balances,
    referrer_with_commission,
    requested,
    stored,
)

from shop import settings
from shop.audit.models import AuditLog
from shop.ledger.models import Journal
from shop.withdrawals import service as withdrawals
from shop.withdrawals.forms import METHOD_LABELS
from shop.withdrawals.models import METHODS, Withdrawal


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def referrer(app, owner):
    return referrer_with_commission(app)


@pytest.fixture
def signed_in(client, referrer):
    login(client, *REFERRER)
    return client


@pytest.fixture
def staff(app, owner):
    client = app.test_client()
    login(client, *owner)
    return client


def ask(client, **data):
    form = {"amount": "20.00", "method": "alipay", "payee_name": "王小明"}
    form["payee_account"] = ACCOUNT
    return submit(client, "/withdrawals", {**form, **data})


# the referrer's page ------------------------------------------------------------------------


def test_every_method_has_a_label():
    assert tuple(METHOD_LABELS) == METHODS


def test_the_account_page_links_to_withdrawals(signed_in):
    assert 'href="/withdrawals"' in text(signed_in.get("/account"))


def test_the_page_needs_sign_in(client, owner):
    assert client.get("/withdrawals").status_code == 302


def test_request_from_the_page_and_see_it_in_the_history(app, signed_in, referrer):
    page = text(signed_in.get("/withdrawals"))
    assert "¥50.00" in page and "At least ¥10.00" in page and "No fee." in page

    response = ask(signed_in)

    assert response.status_code == 303
    [(wid, status, amount, _, _)] = stored(app)
    assert (status, amount) == ("requested", 2000)
    assert balances(app, referrer)["commission_available"] == 3000
    page = text(signed_in.get("/withdrawals"))
    assert "Withdrawal of 20.00 requested" in page
    assert "Waiting for review" in page and "Waiting for payout: ¥20.00" in page
    assert MASKED in page and ACCOUNT not in page
    assert signed_in.get("/withdrawals").headers["Cache-Control"] == "no-store"


def test_the_page_states_the_fee_and_the_history_shows_it(app, signed_in, referrer):
    with app.app_context():
        settings.set_value("withdrawal.fee_bps", "150")
        settings.set_value("withdrawal.fee_min", "100")
    assert "Fee: 1.5% of the amount, at least ¥1.00." in text(signed_in.get("/withdrawals"))
    assert ask(signed_in, amount="40.00").status_code == 303
    page = text(signed_in.get("/withdrawals"))
    assert "<td>¥1.00</td>" in page and "¥39.00" in page  # 1.5% of 40.00 is 0.60: the minimum


@pytest.mark.parametrize(
    "data, message",
    [
        ({"amount": "9.99"}, "The smallest withdrawal is 10.00."),
        ({"amount": "50.01"}, "You have 50.00 of commission available"),
        ({"amount": "abc"}, "is not an amount like 10.00"),
        ({"amount": "1.234"}, "has more than two decimals"),
        ({"amount": "-20"}, "must be more than zero"),
        ({"amount": ""}, "This field is required"),
        ({"method": "paypal"}, "Not a valid choice"),
        ({"payee_name": "   "}, "This field is required"),
        ({"payee_account": "1" * 101}, "Field cannot be longer than 100 characters"),
    ],
)
def test_refused_requests_are_400_with_a_message(app, signed_in, referrer, data, message):
    before = balances(app, referrer)
    response = ask(signed_in, **data)
    assert response.status_code == 400
    assert message in text(response)
    assert stored(app) == [] and balances(app, referrer) == before


def test_a_request_without_the_csrf_token_changes_nothing(app, signed_in, referrer):
    response = signed_in.post(
        "/withdrawals",
        data={"amount": "20.00", "method": "bank", "payee_name": "A", "payee_account": "B"},
    )
    assert response.status_code == 400
    assert stored(app) == []
    assert signed_in.post("/withdrawals/to-wallet").status_code == 400
    assert balances(app, referrer)["commission_available"] == 5000


def test_move_to_the_wallet_in_one_click(app, signed_in, referrer):
    requested(app, referrer, 2000)
    part = submit(signed_in, "/withdrawals/to-wallet", {"amount": "5.00"}, form_url="/withdrawals")
    assert part.status_code == 303
    everything = submit(signed_in, "/withdrawals/to-wallet", {}, form_url="/withdrawals")
    assert everything.status_code == 303
    assert "25.00 moved to your wallet" in text(signed_in.get("/withdrawals"))
    assert balances(app, referrer) == {
        "commission_available": 0,
        "withdrawal_pending": 2000,  # what waits for payout stays there
        "wallet": 3000,
        "payout": 0,
    }
    nothing = submit(signed_in, "/withdrawals/to-wallet", {}, form_url="/withdrawals")
    assert nothing.status_code == 400
    assert "no commission available to move" in text(nothing)
    too_much = submit(signed_in, "/withdrawals/to-wallet", {"amount": "1"}, form_url="/withdrawals")
    assert too_much.status_code == 400 and "move at most that" in text(too_much)
    assert balances(app, referrer)["wallet"] == 3000


def test_the_user_sees_the_rejection_reason_and_the_payment(app, signed_in, referrer):
    first, second = requested(app, referrer), requested(app, referrer)
    with app.app_context():
        withdrawals.reject(Withdrawal.get_by_id(first), None, "户名与账号不符 Name mismatch")
        withdrawals.mark_paid(
            withdrawals.approve(Withdrawal.get_by_id(second), None), None, "BANK-778899"
        )
    page = text(signed_in.get("/withdrawals"))
    assert "Reason: 户名与账号不符 Name mismatch" in page
    assert "back in your available commission" in page
    assert "Paid" in page and "Reference: BANK-778899" in page
    assert balances(app, referrer)["commission_available"] == 3000


# the admin ----------------------------------------------------------------------------------


def detail(wid) -> str:
    return f"/admin/withdrawals/{wid}"


def act(staff, wid, step, data=None):
    return submit(staff, f"{detail(wid)}/{step}", data or {}, form_url=detail(wid))


def test_customers_and_visitors_are_kept_out(app, client, referrer):
    wid = requested(app, referrer)
    urls = ["/admin/withdrawals", detail(wid)]
    assert all(client.get(url).status_code == 302 for url in urls)  # to the login page
    login(client, *REFERRER)
    assert all(client.get(url).status_code == 403 for url in urls)
    token = csrf_from(client, "/withdrawals")
    for step in ("approve", "pay", "reject", "reveal"):
        response = client.post(f"{detail(wid)}/{step}", data={"csrf_token": token, "reason": "x"})
        assert response.status_code == 403
    assert stored(app) == [(wid, "requested", 2000, "", "")]
    with app.app_context():
        assert AuditLog.select().where(AuditLog.action.startswith("withdrawal.")).count() == 0


def test_queue_filters_and_masks(app, staff, referrer):
    first, second = requested(app, referrer, 1000), requested(app, referrer, 1500)
    with app.app_context():
        withdrawals.approve(Withdrawal.get_by_id(second), None)
    listing = text(staff.get("/admin/withdrawals"))
    assert f"W{first}" in listing and f"W{second}" in listing
    assert MASKED in listing and ACCOUNT not in listing and "王小明" not in listing
    waiting = text(staff.get("/admin/withdrawals?status=requested"))
    assert f">W{first}<" in waiting and f">W{second}<" not in waiting
    assert "No withdrawals match" in text(staff.get("/admin/withdrawals?status=paid"))
    dashboard = text(staff.get("/admin/"))
    assert "Withdrawals to review" in dashboard and "Withdrawals to pay" in dashboard
    assert "/admin/withdrawals?status=requested" in dashboard


def test_reveal_is_a_post_and_audited(app, staff, referrer):
    wid = requested(app, referrer)
    page = text(staff.get(detail(wid)))
    assert MASKED in page and ACCOUNT not in page
    assert staff.get(f"{detail(wid)}/reveal").status_code == 405
    revealed = act(staff, wid, "reveal")
    assert revealed.status_code == 200 and revealed.headers["Cache-Control"] == "no-store"
    assert ACCOUNT in text(revealed) and "王小明" in text(revealed)
    with app.app_context():
        [audit] = AuditLog.select().where(AuditLog.action == "withdrawal.reveal")
    assert audit.target == f"withdrawal:{wid}" and audit.actor_id is not None


def test_approve_then_pay_with_a_reference(app, staff, referrer):
    wid = requested(app, referrer, 2000)
    assert act(staff, wid, "pay", {"reference": "X"}).status_code == 409  # not approved yet
    assert act(staff, wid, "approve").status_code == 303
    assert "Mark paid: I have sent 20.00" in text(staff.get(detail(wid)))
    assert act(staff, wid, "approve").status_code == 409
    assert act(staff, wid, "pay", {"reference": "ALIPAY-123"}).status_code == 303
    assert stored(app) == [(wid, "paid", 2000, "", "ALIPAY-123")]
    again = act(staff, wid, "pay", {"reference": "ALIPAY-124"})
    assert again.status_code == 409 and f"withdrawal {wid} is paid" in text(again)
    assert balances(app, referrer)["payout"] == 2000
    with app.app_context():
        assert Journal.select().where(Journal.kind == "withdrawal.paid").count() == 1
        actions = [a.action for a in AuditLog.select().where(AuditLog.actor_id.is_null(False))]
    assert "withdrawal.approve" in actions and "withdrawal.paid" in actions


def test_reject_needs_a_reason(app, staff, referrer):
    wid = requested(app, referrer, 2000)
    refused = act(staff, wid, "reject", {"reason": "  "})
    assert refused.status_code == 400 and "Give the reason" in text(refused)
    assert stored(app) == [(wid, "requested", 2000, "", "")]
    assert act(staff, wid, "reject", {"reason": "Wrong account"}).status_code == 303
    assert stored(app) == [(wid, "rejected", 2000, "Wrong account", "")]
    assert balances(app, referrer)["commission_available"] == 5000
    assert "No staff action for a rejected withdrawal" in text(staff.get(detail(wid)))


def test_an_unknown_withdrawal_is_404(staff):
    assert staff.get(detail(999)).status_code == 404
    token = csrf_from(staff, "/account")
    for step in ("approve", "pay", "reject", "reveal"):
        assert staff.post(f"{detail(999)}/{step}", data={"csrf_token": token}).status_code == 404
