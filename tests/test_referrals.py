"""Invite links, referral binding, the distributor page and the staff's distribution pages,
through the web: cookies as a browser keeps them, forms with their CSRF tokens."""

import re

import pytest
from conftest import login, submit
from selling import card_product
from werkzeug.security import generate_password_hash

from shop import invariants, ledger, settings
from shop.accounts import service as accounts
from shop.accounts.models import User
from shop.api import client as api_client
from shop.api import keys
from shop.audit.models import AuditLog
from shop.distribution import referrals
from shop.distribution.models import Commission, ProductRates
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import service as payments

GUEST = {"contact": "guest@example.com", "query_password": "open-sesame"}


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch):
    monkeypatch.setattr(
        accounts, "hash_password", lambda p: generate_password_hash(p, "pbkdf2:sha256:1")
    )


@pytest.fixture
def people(app, owner):
    """A←B←C: A invited B, B invited C (ids and invite codes), and a product 10.00, cost 6.00."""
    with app.app_context():
        a = accounts.register("alice@example.com", "password-a")
        b = accounts.register("bob@example.com", "password-b", referrer_code=a.invite_code)
        c = accounts.register("carol@example.com", "password-c", referrer_code=b.invite_code)
        product = card_product(keys=5, price=1000, cost=600)
        return {
            "a": (a.id, a.invite_code),
            "b": (b.id, b.invite_code),
            "c": (c.id, c.invite_code),
            "product": product.id,
        }


def text(response) -> str:
    return response.get_data(as_text=True)


def ref_cookie(client):
    cookie = client.get_cookie(referrals.REFERRAL_COOKIE)
    return cookie.value if cookie else None


def healthy(app):
    with app.app_context():
        assert {k: v for k, v in invariants.run_all().items() if v} == {}


def user(app, uid) -> User:
    with app.app_context():
        return User.get_by_id(uid)


# the invite cookie -------------------------------------------------------------------------


def test_invite_link_sets_the_cookie_and_the_first_touch_wins(client, people):
    _, code_b = people["b"]
    _, code_c = people["c"]
    response = client.get(f"/r/{code_b.lower()}")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert ref_cookie(client) == code_b
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Max-Age=" in set_cookie

    client.get(f"/r/{code_c}")
    assert ref_cookie(client) == code_b  # a later link does not take the referral over


def test_an_unknown_invite_code_just_goes_home(client, people):
    response = client.get("/r/NOSUCH99")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Set-Cookie" not in response.headers
    # and a cookie naming nobody (edited by hand) gives way to a real invite
    client.set_cookie(referrals.REFERRAL_COOKIE, "NOSUCH99")
    client.get(f"/r/{people['c'][1]}")
    assert ref_cookie(client) == people["c"][1]


def test_qr_code_of_the_invite_link_is_drawn_locally(client, people):
    response = client.get(f"/r/{people['a'][1]}/qr.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert text(response).startswith("<svg") and "<path" in text(response)
    assert client.get("/r/NOSUCH99/qr.svg").status_code == 404


# binding at registration -------------------------------------------------------------------


def register(client, email, **extra):
    data = {"email": email, "password": "password-x", "confirm": "password-x", **extra}
    return submit(client, "/register", data)


def test_registering_after_an_invite_link_binds_the_referrer(client, app, people):
    client.get(f"/r/{people['c'][1]}")
    form = text(client.get("/register"))
    assert f'value="{people["c"][1]}"' in form  # the form shows whose invite it is
    # even with the field emptied, the cookie binds
    assert register(client, "dave@example.com", invite_code="").status_code == 302
    with app.app_context():
        dave = accounts.find_by_email("dave@example.com")
        assert dave.referrer_id == people["c"][0]
        # the user has no way to change it: another invite link changes nothing
    client.get(f"/r/{people['a'][1]}")
    assert user(app, dave.id).referrer_id == people["c"][0]


def test_registering_with_an_unknown_invite_code_is_refused(client, app, people):
    response = register(client, "eve@example.com", invite_code="NOSUCH99")
    assert response.status_code == 400 and "No account has the invite code" in text(response)
    with app.app_context():
        assert accounts.find_by_email("eve@example.com") is None


def test_user_add_binds_by_code_and_refuses_unknown_codes(app, people):
    runner = app.test_cli_runner()
    ok = runner.invoke(
        args=[
            "shop",
            "user",
            "add",
            "--email",
            "frank@example.com",
            "--password",
            "password-f",
            "--referrer",
            people["b"][1],
            "--json",
        ]  # fmt: skip
    )
    assert ok.exit_code == 0, ok.output
    with app.app_context():
        assert accounts.find_by_email("frank@example.com").referrer_id == people["b"][0]
    bad = runner.invoke(
        args=[
            "shop",
            "user",
            "add",
            "--email",
            "gina@example.com",
            "--password",
            "password-g",
            "--referrer",
            "NOSUCH99",
            "--json",
        ]  # fmt: skip
    )
    assert bad.exit_code == 2


# staff changing a referrer -----------------------------------------------------------------


def change(client, uid, code, reason="moved by support"):
    return submit(
        client,
        f"/admin/users/{uid}/referrer",
        {"code": code, "reason": reason},
        form_url=f"/admin/users/{uid}",
    )


def test_staff_refuse_self_referral_and_cycles_and_audit_a_change(client, app, owner, people):
    login(client, *owner)
    a_id, a_code = people["a"]
    b_id, b_code = people["b"]
    c_id, c_code = people["c"]

    own = change(client, a_id, a_code)
    assert own.status_code == 400 and "Nobody can be their own referrer." in text(own)
    cycle = change(client, a_id, c_code)  # C is below A: A←B←C←A would be endless
    assert cycle.status_code == 400 and "a cycle" in text(cycle)
    assert user(app, a_id).referrer_id is None

    moved = change(client, c_id, a_code)
    assert moved.status_code == 303
    assert user(app, c_id).referrer_id == a_id
    with app.app_context():
        entry = AuditLog.get(
            (AuditLog.action == "user.referrer") & (AuditLog.target == f"user:{c_id}")
        )
        assert f'"old": {b_id}' in entry.detail and f'"new": {a_id}' in entry.detail
        assert "moved by support" in entry.detail
    page = text(client.get(f"/admin/users/{c_id}"))
    assert "moved by support" in page and a_code in page

    cleared = change(client, c_id, "")
    assert cleared.status_code == 303 and user(app, c_id).referrer_id is None


def test_customers_cannot_reach_the_staff_pages(client, people):
    login(client, "carol@example.com", "password-c")
    assert client.get(f"/admin/users/{people['c'][0]}").status_code == 403
    assert client.get("/admin/distribution").status_code == 403


def test_user_page_shows_upline_and_downline_masked(client, app, owner, people):
    login(client, *owner)
    page = text(client.get(f"/admin/users/{people['b'][0]}"))
    assert "a***@example.com" in page and "c***@example.com" in page
    assert "alice@example.com" not in page and "carol@example.com" not in page
    assert "Level 1 · members: 1" in page
    users = text(client.get("/admin/users"))
    assert f'href="/admin/users/{people["b"][0]}"' in users


# buying through a referral -----------------------------------------------------------------


def guest_buy(client, product_id) -> str:
    response = submit(
        client, f"/p/{product_id}/buy", {"quantity": "1", **GUEST}, form_url=f"/p/{product_id}"
    )
    assert response.status_code == 302, text(response)
    return response.headers["Location"].rsplit("/", 1)[1]


def test_a_guest_with_an_invite_cookie_credits_the_chain(client, app, people):
    client.get(f"/r/{people['c'][1]}")
    order_no = guest_buy(client, people["product"])
    with app.app_context():
        order = Order.get(Order.order_no == order_no)
        assert order.referrer_id == people["c"][0]
        payments.record_payment("sandbox", "t-guest", order_no, order.amount)
        earned = {c.user_id: c.amount for c in Commission.select()}
    assert earned == {people["c"][0]: 100, people["b"][0]: 50, people["a"][0]: 20}
    healthy(app)


def test_a_guest_without_a_cookie_credits_nobody(client, app, people):
    order_no = guest_buy(client, people["product"])
    with app.app_context():
        assert Order.get(Order.order_no == order_no).referrer_id is None


def test_a_members_invite_cookie_does_not_redirect_their_purchases(client, app, people):
    with app.app_context():
        payments.credit_wallet(people["c"][0], 5000)
    client.get(f"/r/{people['a'][1]}")
    login(client, "carol@example.com", "password-c")
    with app.app_context():
        order = orders.place_order(people["product"], 1, user=User.get_by_id(people["c"][0]))
        orders.pay_with_wallet(order)
        earned = {c.user_id: c.depth for c in Commission.select()}
    assert earned == {people["b"][0]: 1, people["a"][0]: 2}  # C's own chain, C earns nothing


# the distributor page ----------------------------------------------------------------------


def test_distributor_page_shows_link_balances_chart_downline_and_records(client, app, people):
    with app.app_context():
        payments.credit_wallet(people["c"][0], 5000)
        buyer = User.get_by_id(people["c"][0])
        order = orders.pay_with_wallet(orders.place_order(people["product"], 1, user=buyer))
    login(client, "bob@example.com", "password-b")
    page = text(client.get("/distribution"))
    assert f"/r/{people['b'][1]}" in page and f"/r/{people['b'][1]}/qr.svg" in page
    pending = re.search(r'id="commission-pending">([^<]+)<', page).group(1)
    assert pending == "¥1.00"  # B is C's referrer: 10 % of 10.00
    assert "c***@example.com" in page and "carol@example.com" not in page
    assert "Level 1 · members: 1" in page
    assert "<svg" in page and "<rect" in page and order.order_no in page
    assert "style=" not in page  # the CSP forbids inline styles
    home = text(client.get("/"))
    assert 'href="/distribution"' in home

    with app.app_context():
        orders.complete(Order.get_by_id(order.id))
    page = text(client.get("/distribution"))
    assert re.search(r'id="commission-available">([^<]+)<', page).group(1) == "¥1.00"
    assert re.search(r'id="commission-pending">([^<]+)<', page).group(1) == "¥0.00"

    client.post(
        "/logout",
        data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)},
    )
    login(client, "alice@example.com", "password-a")
    page = text(client.get("/distribution"))  # A is two levels above the buyer: 5 %
    assert re.search(r'id="commission-available">([^<]+)<', page).group(1) == "¥0.50"
    assert "Level 2 · members: 1" in page and "c***@example.com" in page


def test_distributor_page_needs_a_sign_in(client, people):
    response = client.get("/distribution")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_balance_api_reports_real_commission(client, app, people):
    with app.app_context():
        payments.credit_wallet(people["c"][0], 5000)
        buyer = User.get_by_id(people["c"][0])
        orders.pay_with_wallet(orders.place_order(people["product"], 1, user=buyer))
        key, secret = keys.create(people["b"][0], "test")
    path = "/api/v1/balance"
    headers = api_client.signed_headers(key.key_id, secret, "GET", path, b"")
    balance = client.get(path, headers=headers).json
    assert balance["commission_pending"] == 100 and balance["commission_available"] == 0


# staff: rates, refunds ---------------------------------------------------------------------


def test_staff_set_product_rates_and_bad_rates_are_refused(client, app, owner, people):
    login(client, *owner)
    url = "/admin/distribution/product-rates"
    form = "/admin/distribution"
    bad = submit(client, url, {"product_id": people["product"], "rates": "10,abc"}, form_url=form)
    assert bad.status_code == 400 and "is not a percentage" in text(bad)
    too_many = submit(
        client, url, {"product_id": people["product"], "rates": "1,1,1,1,1,1"}, form_url=form
    )
    assert too_many.status_code == 400
    ok = submit(client, url, {"product_id": people["product"], "rates": "20, 2.5%"}, form_url=form)
    assert ok.status_code == 303
    with app.app_context():
        assert ProductRates.get_by_id(people["product"]).rates == "20,2.5"
    assert "20%, 2.5%" in text(client.get(form))
    cleared = submit(client, url, {"product_id": people["product"], "rates": ""}, form_url=form)
    assert cleared.status_code == 303
    with app.app_context():
        assert ProductRates.get_or_none(ProductRates.product == people["product"]) is None


def test_the_rates_setting_is_validated_on_the_settings_page(client, app, owner):
    login(client, *owner)
    over = submit(client, "/admin/settings", {"setting:commission.rates": "60,50"})
    assert over.status_code == 400 and "more than 100 percent" in text(over)
    assert (
        submit(client, "/admin/settings", {"setting:commission.rates": "12.5, 4"}).status_code
        == 302
    )
    with app.app_context():
        assert settings.get("commission.rates") == "12.5,4"


def test_staff_refund_a_completed_order_and_commission_is_clawed_back(client, app, owner, people):
    with app.app_context():
        payments.credit_wallet(people["c"][0], 5000)
        buyer = User.get_by_id(people["c"][0])
        order = orders.pay_with_wallet(orders.place_order(people["product"], 1, user=buyer))
        orders.complete(order)
    login(client, *owner)
    page = text(client.get(f"/admin/orders/{order.order_no}"))
    assert "Commission" in page and "Refund" in page
    response = submit(
        client,
        f"/admin/orders/{order.order_no}/refund",
        {"reason": "Fraudulent purchase"},
        form_url=f"/admin/orders/{order.order_no}",
    )
    assert response.status_code == 303
    with app.app_context():
        assert Order.get_by_id(order.id).status == "refunded"
        assert {c.status for c in Commission.select()} == {"clawed_back"}
        assert ledger.balance(ledger.user_account(people["b"][0], "commission_available")) == 0
        assert ledger.balance(ledger.user_account(people["c"][0], "wallet")) == 5000
    healthy(app)


@pytest.mark.pg
def test_two_staff_moving_users_under_each_other_at_once_never_make_a_cycle(app, people):
    """Carol under Dave and Dave under Carol, asked at the same moment: one change is made,
    the other is refused as a cycle, round after round."""
    import threading

    c_id, c_code = people["c"]
    with app.app_context():
        dave = accounts.register("dave@example.com", "password-d")
    d_id, d_code = dave.id, dave.invite_code

    def move(user_id, code, barrier, outcomes):
        with app.app_context():
            who = User.get_by_id(user_id)
            barrier.wait()
            try:
                referrals.change_referrer(who, code, actor=None, reason="race")
                outcomes.append("moved")
            except referrals.ReferralError:
                outcomes.append("refused")

    for _ in range(10):
        with app.app_context():
            User.update(referrer=None).where(User.id.in_([c_id, d_id])).execute()
        barrier, outcomes = threading.Barrier(2), []
        threads = [
            threading.Thread(target=move, args=(c_id, d_code, barrier, outcomes)),
            threading.Thread(target=move, args=(d_id, c_code, barrier, outcomes)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["moved", "refused"]
        with app.app_context():
            referrers = {
                u.id: u.referrer_id for u in User.select().where(User.id.in_([c_id, d_id]))
            }
        assert referrers in ({c_id: d_id, d_id: None}, {c_id: None, d_id: c_id})
