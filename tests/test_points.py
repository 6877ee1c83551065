"""Referral credit points: maturing once (also with concurrent jobs), never early, never with
a violation or without a completed order; paying part of an order within the cap, with the
ledger exact; coming back on refund, expiry and cancellation; and the audit that checks it."""

import json
from datetime import timedelta

import pytest
from conftest import login, submit
from selling import card_product, customer
from test_api import call, new_buyer
from test_ledger import in_threads

from shop import crypto, invariants, ledger, plugins, settings
from shop.accounts import service as accounts
from shop.accounts.models import User
from shop.audit.models import AuditLog
from shop.catalog.models import Product
from shop.clock import now
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import service as payments
from shop.points import checks, maturation
from shop.points import service as points
from shop.points.models import ReferralAward, Violation
from shop.settings import service as settings_cache


@pytest.fixture(autouse=True)
def keyring():
    """The key ring, and settings read from this test's database: the per-process cache
    would otherwise carry another test's points settings over for a second or two."""
    crypto.configure(b"k" * 32)
    settings_cache.invalidate()
    yield
    settings_cache.invalidate()


def healthy():
    assert {k: v for k, v in invariants.run_all().items() if v} == {}


def held(user) -> int:
    return ledger.balance(ledger.user_account(user.id, "points"))


def pool() -> int:
    return ledger.balance(ledger.system_account("points_pool"))


def give(user, n: int) -> None:
    """Points for a test buyer, issued from the pool like an award."""
    ledger.transfer(
        ledger.system_account("points_pool"), ledger.user_account(user.id, "points"), n, "test"
    )


def invited_pair():
    referrer = customer("ref@example.com", wallet=10_000)
    invited = accounts.register(
        "new@example.com", "buyer-pass-1", referrer_code=referrer.invite_code
    )
    payments.credit_wallet(invited.id, 10_000)
    return referrer, invited


def completed_order(user, product=None):
    order = orders.place_order((product or card_product()).id, 1, user=user)
    orders.pay_with_wallet(order, actor=user)
    return orders.complete(Order.get_by_id(order.id))


def days_later(monkeypatch, days: float):
    """Move the maturation job's clock `days` ahead of now."""
    moved = now() + timedelta(days=days)
    monkeypatch.setattr(maturation, "now", lambda: moved)


# maturing ------------------------------------------------------------------------------------


@pytest.mark.pg
def test_both_sides_get_the_award_once_after_90_days(database, monkeypatch):
    referrer, invited = invited_pair()
    completed_order(invited)
    days_later(monkeypatch, 89.9)
    assert maturation.mature() == 0
    days_later(monkeypatch, 90)
    assert maturation.mature() == 1
    assert (held(referrer), held(invited), pool()) == (100, 100, -200)
    award = ReferralAward.get(ReferralAward.invited == invited.id)
    assert (award.referrer_id, award.points) == (referrer.id, 100)
    assert maturation.mature() == 0
    assert (held(referrer), held(invited)) == (100, 100)
    assert AuditLog.select().where(AuditLog.action == "points.award").count() == 1
    healthy()


@pytest.mark.pg
def test_concurrent_jobs_award_exactly_once(database, monkeypatch):
    referrer, invited = invited_pair()
    completed_order(invited)
    days_later(monkeypatch, 91)
    results, errors = in_threads(database, 8, lambda i: maturation.mature())
    assert errors == [] and sorted(results) == [0] * 7 + [1]
    assert (held(referrer), held(invited), pool()) == (100, 100, -200)
    assert ReferralAward.select().count() == 1
    healthy()


def test_the_days_and_the_award_are_settings(database, monkeypatch):
    referrer, invited = invited_pair()
    completed_order(invited)
    settings.set_value("points.referral_days", "30")
    settings.set_value("points.referral_award", "0")
    days_later(monkeypatch, 31)
    assert maturation.mature() == 0  # 0 points: awards are off
    settings.set_value("points.referral_award", "250")
    assert maturation.mature() == 1
    assert (held(referrer), held(invited)) == (250, 250)


def test_no_award_without_a_completed_order_or_without_a_referrer(database, monkeypatch):
    referrer, invited = invited_pair()
    loner = customer("loner@example.com", wallet=5000)
    completed_order(loner)
    order = orders.place_order(card_product().id, 1, user=invited)
    orders.pay_with_wallet(order, actor=invited)  # delivered, not completed
    days_later(monkeypatch, 365)
    assert maturation.mature() == 0
    orders.complete(Order.get_by_id(order.id))
    assert maturation.mature() == 1
    assert held(loner) == 0 and held(referrer) == 100


def risk_rejected(user, monkeypatch):
    """An order the risk check held and staff then refunded."""
    product = card_product()
    with monkeypatch.context() as risky:
        risky.setattr(plugins, "fire", lambda hook, **kw: ["velocity"] * (hook == "risk_check"))
        order = orders.place_order(product.id, 1, user=user)
        orders.pay_with_wallet(order, actor=user)
    assert Order.get_by_id(order.id).status == "held"
    orders.refund(Order.get_by_id(order.id), "Rejected by the risk review")


@pytest.mark.parametrize("violation", ["recorded", "risk_rejection", "banned", "referrer_banned"])
def test_a_violation_means_no_award_for_either_side(database, monkeypatch, violation):
    referrer, invited = invited_pair()
    order = completed_order(invited)
    if violation == "recorded":
        maturation.record_violation(invited, "chargeback", "bank reversal", order.order_no)
    elif violation == "risk_rejection":
        risk_rejected(invited, monkeypatch)
    else:
        banned = invited if violation == "banned" else referrer
        User.update(is_active=False).where(User.id == banned.id).execute()
    days_later(monkeypatch, 120)
    assert maturation.mature() == 0
    assert (held(referrer), held(invited)) == (0, 0)
    assert ReferralAward.select().count() == 0


def test_recording_a_violation_checks_its_kind_and_order(database):
    referrer, invited = invited_pair()
    other = completed_order(referrer)
    with pytest.raises(maturation.ViolationError, match="one of: fraud, chargeback, abuse"):
        maturation.record_violation(invited, "rude")
    with pytest.raises(maturation.ViolationError, match="has no order"):
        maturation.record_violation(invited, "fraud", order_no=other.order_no)
    assert Violation.select().count() == 0
    maturation.record_violation(invited, "fraud", actor=referrer)
    assert AuditLog.get(AuditLog.action == "user.violation").target == f"user:{invited.id}"


# paying with points --------------------------------------------------------------------------


@pytest.mark.pg
def test_points_pay_part_of_an_order_and_the_ledger_is_exact(database):
    buyer = customer(wallet=5000)
    give(buyer, 500)
    order = orders.place_order(card_product(price=1000, cost=500).id, 1, user=buyer, points="100")
    assert (order.amount, order.points_used, order.points_value) == (900, 100, 100)
    assert (held(buyer), pool()) == (400, -400)
    assert payments.payable_for_order(order).amount == 900
    orders.pay_with_wallet(order, actor=buyer)
    assert ledger.balance(ledger.user_account(buyer.id, "wallet")) == 4100
    orders.complete(Order.get_by_id(order.id))
    # the money settles: cost 500 + revenue 400 = 900 paid; the 100 points are the discount
    assert ledger.balance(ledger.system_account("cost_of_goods")) == 500
    assert ledger.balance(ledger.system_account("revenue")) == 400
    assert points.held_for(order) == 100
    healthy()


def test_a_point_is_worth_the_configured_fen(database):
    settings.set_value("points.value", "5")
    settings.set_value("points.max_ratio", "50")
    buyer = customer(wallet=5000)
    give(buyer, 500)
    order = orders.place_order(card_product(price=1000, cost=0).id, 1, user=buyer, points=100)
    assert (order.amount, order.points_used, order.points_value) == (500, 100, 500)
    with pytest.raises(points.PointsError, match="at most 100 points"):
        orders.place_order(card_product(price=1000, cost=0).id, 1, user=buyer, points=101)


@pytest.mark.parametrize(
    "use, balance, cost, message",
    [
        (101, 500, 500, "up to 10% of this order, and not below its cost: use at most 100 points"),
        (60, 50, 500, "You have only 50 points."),
        (51, 500, 950, "use at most 50 points"),  # 10 % would be 100, the margin is 50
        ("1.5", 500, 500, "whole number"),
        ("-1", 500, 500, "whole number"),
        ("lots", 500, 500, "whole number"),
    ],
)
def test_points_over_a_limit_are_refused_and_nothing_changes(database, use, balance, cost, message):
    buyer = customer()
    give(buyer, balance)
    product = card_product(price=1000, cost=cost)
    with pytest.raises(points.PointsError) as refused:
        orders.place_order(product.id, 1, user=buyer, points=use)
    assert message in str(refused.value)
    assert Order.select().count() == 0
    assert (held(buyer), Product.get_by_id(product.id).stock) == (balance, 5)


def test_a_guest_cannot_pay_with_points(database):
    with pytest.raises(points.PointsError, match="Sign in"):
        orders.place_order(
            card_product().id, 1, contact="g@example.com", query_password="open-sesame", points=1
        )
    assert Order.select().count() == 0


def test_no_points_means_no_points_journal(database):
    buyer = customer(wallet=5000)
    order = orders.place_order(card_product().id, 1, user=buyer, points="")
    assert (order.amount, order.points_used, order.points_value) == (1000, 0, 0)
    assert points.held_for(order) == 0


# giving points back --------------------------------------------------------------------------


def paid_with_points(buyer, n=100):
    order = orders.place_order(card_product(price=1000, cost=500).id, 1, user=buyer, points=n)
    return orders.pay_with_wallet(order, actor=buyer)


@pytest.mark.pg
def test_a_refund_gives_the_points_back(database):
    buyer = customer(wallet=5000)
    give(buyer, 300)
    order = paid_with_points(buyer)
    assert held(buyer) == 200
    orders.refund(order, "The key did not work")
    assert (held(buyer), pool()) == (300, -300)
    assert ledger.balance(ledger.user_account(buyer.id, "wallet")) == 5000
    assert points.held_for(order) == 0
    healthy()


def test_expiry_and_cancellation_give_the_points_back(database, monkeypatch):
    buyer = customer()
    give(buyer, 300)
    product = card_product(price=1000, cost=500)
    expiring = orders.place_order(product.id, 1, user=buyer, points=100)
    cancelled = orders.place_order(product.id, 1, user=buyer, points=50)
    assert held(buyer) == 150
    orders.cancel(cancelled, actor=buyer)
    assert held(buyer) == 200
    monkeypatch.setattr(orders, "now", lambda: expiring.expires_at + timedelta(seconds=1))
    assert orders.expire_due() == 1
    assert (held(buyer), pool()) == (300, -300)
    healthy()


def test_a_late_payment_takes_the_points_again_and_a_refund_returns_them_once(
    database, monkeypatch
):
    buyer = customer()
    give(buyer, 300)
    order = orders.place_order(card_product(price=1000, cost=500).id, 1, user=buyer, points=100)
    monkeypatch.setattr(orders, "now", lambda: order.expires_at + timedelta(seconds=1))
    orders.expire_due()
    assert held(buyer) == 300
    assert payments.record_payment("sandbox", "late-1", order.order_no, 900) == "reclaimed"
    assert held(buyer) == 200 and Order.get_by_id(order.id).status == "delivered"
    orders.refund(Order.get_by_id(order.id), "Changed my mind")
    assert (held(buyer), pool()) == (300, -300)
    healthy()


def test_a_late_payment_whose_points_were_spent_is_refunded(database, monkeypatch):
    buyer = customer()
    give(buyer, 100)
    product = card_product(price=1000, cost=500)
    order = orders.place_order(product.id, 1, user=buyer, points=100)
    monkeypatch.setattr(orders, "now", lambda: order.expires_at + timedelta(seconds=1))
    orders.expire_due()
    orders.place_order(product.id, 1, user=buyer, points=100)  # the points, spent again
    assert payments.record_payment("sandbox", "late-2", order.order_no, 900) == "refunded"
    order = Order.get_by_id(order.id)
    assert order.status == "refunded" and "points were spent" in order.reason
    assert ledger.balance(ledger.user_account(buyer.id, "wallet")) == 900
    assert held(buyer) == 0 and Product.get_by_id(product.id).stock == 4
    healthy()


# the audit -----------------------------------------------------------------------------------


def test_the_audit_finds_points_taken_or_given_without_their_order(database, monkeypatch):
    buyer = customer(wallet=5000)
    give(buyer, 300)
    order = paid_with_points(buyer)
    assert checks.order_points() == []
    # points handed back while the order stands: the buyer would have both
    ledger.transfer(
        ledger.system_account("points_pool"),
        ledger.user_account(buyer.id, "points"),
        100,
        points.RETURN,
        ref=order.order_no,
    )
    assert checks.order_points() == [
        f"delivered order {order.order_no} used 100 points worth 100; the pool holds 0 for it"
    ]
    # an award journal nobody recorded
    ledger.transfer(
        ledger.system_account("points_pool"),
        ledger.user_account(buyer.id, "points"),
        100,
        maturation.AWARD,
        ref=f"user:{buyer.id}",
    )
    assert len(checks.referral_awards()) == 1
    assert "has no referral award" in checks.referral_awards()[0]


# storefront, API, CLI ------------------------------------------------------------------------


@pytest.fixture
def member(app, owner):
    with app.app_context():
        product = card_product(keys=3, price=1000, cost=500)
        buyer = customer(wallet=5000)
        give(buyer, 300)
        return {"product": product.id, "user": buyer.id}


def buy(client, product, data):
    return submit(client, f"/p/{product}/buy", data, form_url=f"/p/{product}")


def test_the_product_page_offers_points_to_a_member_who_has_some(client, app, member):
    product = member["product"]
    assert 'name="points"' not in client.get(f"/p/{product}").get_data(as_text=True)
    login(client, "buyer@example.com", "buyer-pass-1")
    page = client.get(f"/p/{product}").get_data(as_text=True)
    assert 'name="points"' in page
    assert "You have 300 points; each pays ¥0.01, up to 10% of an order." in page


def test_points_over_the_cap_at_checkout_are_400_with_the_reason(client, app, member):
    login(client, "buyer@example.com", "buyer-pass-1")
    response = buy(client, member["product"], {"quantity": "1", "points": "150"})
    assert response.status_code == 400
    assert "use at most 100 points" in response.get_data(as_text=True)
    response = buy(client, member["product"], {"quantity": "1", "points": "abc"})
    assert response.status_code == 400 and "whole number" in response.get_data(as_text=True)
    with app.app_context():
        assert Order.select().count() == 0
        assert points.balance(member["user"]) == 300


def test_checkout_with_points_lowers_the_amount_and_the_order_says_so(client, app, member):
    login(client, "buyer@example.com", "buyer-pass-1")
    response = buy(client, member["product"], {"quantity": "1", "points": "100"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Paid with points" in page and "100 points (¥1.00)" in page and "¥9.00" in page
    with app.app_context():
        order = Order.get(Order.user == member["user"])
        assert (order.amount, order.points_used) == (900, 100)
        assert points.balance(member["user"]) == 200


def test_api_balance_shows_the_points_from_the_ledger(client, app, owner):
    with app.app_context():
        buyer = new_buyer()
        give(buyer.user, 42)
    assert call(client, buyer, "GET", "/api/v1/balance").get_json()["points"] == 42


def test_cli_points_mature_and_violation(app, monkeypatch):
    runner = app.test_cli_runner()

    def cli(*args):
        result = runner.invoke(args=["shop", *args, "--json"])
        return result.exit_code, json.loads(result.stdout)

    with app.app_context():
        referrer, invited = invited_pair()
        loner = customer("loner@example.com")
        completed_order(invited)
        completed_order(referrer)
    assert cli("points", "mature") == (0, {"awarded": 0})
    days_later(monkeypatch, 90)
    code, out = cli(
        "points", "violation", str(loner.id), "--kind", "fraud", "--note", "stolen card"
    )
    assert code == 0 and out["kind"] == "fraud" and out["user_id"] == loner.id
    assert cli("points", "violation", str(loner.id), "--kind", "odd")[0] == 2
    assert cli("points", "violation", "999", "--kind", "fraud")[0] == 2
    assert cli("points", "mature") == (0, {"awarded": 1})
    assert cli("points", "mature") == (0, {"awarded": 0})


def test_staff_record_a_violation_on_the_admin_and_see_points_on_orders(client, app, owner):
    with app.app_context():
        buyer = customer(wallet=5000)
        give(buyer, 300)
        order = paid_with_points(buyer)
    login(client, *owner)
    url = f"/admin/users/{buyer.id}/level"
    violations = f"/admin/users/{buyer.id}/violations"
    refused = submit(client, violations, {"kind": "rude"}, form_url=url)
    assert refused.status_code == 400 and "one of: fraud" in refused.get_data(as_text=True)
    done = submit(client, violations, {"kind": "fraud", "note": "stolen card"}, form_url=url)
    assert done.status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert "stolen card" in page and "<dd>200</dd>" in page
    assert "100 points (1.00)" in client.get(f"/admin/orders/{order.order_no}").get_data(
        as_text=True
    )
    with app.app_context():
        violation = Violation.get()
        assert (violation.user_id, violation.kind) == (buyer.id, "fraud")
        assert AuditLog.get(AuditLog.action == "user.violation").actor_id is not None
