"""Buying through the storefront: checkout, the order page, keys, look-up, history, wallet.

Payments are credited with `record_payment` directly (what a gateway's verified callback
does), or through a fake gateway standing in for the sandbox plugin.
"""

import json
import re

import pytest
from conftest import csrf_from, login, submit
from selling import card_product, customer, fake_gateways, free_product

from shop import invariants, ledger
from shop.audit.models import AuditLog
from shop.catalog.models import Product
from shop.ledger.models import Journal
from shop.orders.models import Order
from shop.payments import service as payments
from shop.payments.models import TopUp
from shop.plugins import registry

GUEST = {"contact": "guest@example.com", "query_password": "open-sesame"}


@pytest.fixture
def product(app, owner):
    with app.app_context():
        return card_product(keys=3, price=1000).id


def text(response) -> str:
    return response.get_data(as_text=True)


def buy(client, product_id, data, **kwargs):
    return submit(client, f"/p/{product_id}/buy", data, form_url=f"/p/{product_id}", **kwargs)


def orders(app) -> list[Order]:
    with app.app_context():
        return list(Order.select().order_by(Order.id))


def pay(app, order_no):
    with app.app_context():
        order = Order.get(Order.order_no == order_no)
        assert payments.record_payment("sandbox", f"t-{order_no}", order_no, order.amount) == "paid"


def guest_order(client, app, product, quantity="1") -> str:
    response = buy(client, product, {"quantity": quantity, **GUEST})
    assert response.status_code == 302, text(response)
    return response.headers["Location"].rsplit("/", 1)[1]


def stock(app, product_id) -> int:
    with app.app_context():
        return Product.get_by_id(product_id).stock


# checkout ----------------------------------------------------------------------------------


def test_guest_checkout_pay_and_get_keys(client, app, product):
    order_no = guest_order(client, app, product, "2")
    page = client.get(f"/o/{order_no}")
    body = text(page)
    assert page.status_code == 200 and "Awaiting payment" in body and "¥20.00" in body
    assert page.headers["Cache-Control"] == "no-store"
    assert stock(app, product) == 1
    pay(app, order_no)
    body = text(client.get(f"/o/{order_no}"))
    assert "Delivered" in body
    keys = re.findall(r'<code class="key">(KEY-[^<]+)</code>', body)
    assert len(set(keys)) == 2
    download = client.get(f"/o/{order_no}/keys.txt")
    assert download.status_code == 200
    assert download.mimetype == "text/plain"
    assert download.headers["Cache-Control"] == "no-store"
    assert "attachment" in download.headers["Content-Disposition"]
    assert sorted(text(download).split()) == sorted(keys)


def test_checkout_through_a_gateway_pays_and_returns_to_the_order(
    client, app, product, monkeypatch
):
    offered = fake_gateways(monkeypatch)
    response = buy(client, product, {"quantity": "1", "gateway": "fake", **GUEST})
    assert response.status_code == 302
    [payable] = offered["fake"].started
    assert payable.amount == 1000 and payable.return_path == f"/o/{payable.ref}"
    assert response.headers["Location"].endswith(payable.return_path)
    assert "Your keys" in text(client.get(payable.return_path))


def test_guest_cannot_choose_the_wallet(client, app, product, monkeypatch):
    offered = fake_gateways(monkeypatch)
    response = buy(client, product, {"quantity": "1", "gateway": "wallet", **GUEST})
    assert response.status_code == 400 and "Choose one of the payment methods" in text(response)
    assert offered["wallet"].started == [] and orders(app) == []


def test_client_sent_price_is_ignored(client, app, product):
    buy(
        client,
        product,
        {"quantity": "2", "price": "0.01", "amount": "1", "unit_price": "1", **GUEST},
    )
    [order] = orders(app)
    assert order.amount == 2000 and order.unit_price == 1000


@pytest.mark.parametrize(
    "quantity, message",
    [
        ("0", "between 1 and 100"),
        ("-1", "between 1 and 100"),
        ("1.5", "whole number"),
        ("abc", "whole number"),
        (str(10**9), "between 1 and 100"),
        ("", "whole number"),
    ],
)
def test_bad_quantity_is_refused_and_creates_nothing(client, app, product, quantity, message):
    response = buy(client, product, {"quantity": quantity, **GUEST})
    assert response.status_code == 400
    assert message in text(response)
    assert orders(app) == [] and stock(app, product) == 3


def test_sold_out_is_409_and_creates_nothing(client, app, owner):
    with app.app_context():
        empty = card_product(keys=0).id
    response = buy(client, empty, {"quantity": "1", **GUEST})
    assert response.status_code == 409 and "Sold out" in text(response)
    assert orders(app) == []


def test_more_than_in_stock_is_409(client, app, product):
    response = buy(client, product, {"quantity": "4", **GUEST})
    assert response.status_code == 409 and "Only 3 left" in text(response)
    assert orders(app) == []


@pytest.mark.parametrize(
    "data, message",
    [
        ({"query_password": "open-sesame"}, "email address or a phone number"),
        ({"contact": "not a contact", "query_password": "open-sesame"}, "email address or a phone"),
        ({"contact": "guest@example.com"}, "query password of at least 4"),
        ({"contact": "guest@example.com", "query_password": "abc"}, "query password of at least 4"),
        ({"contact": "<script>alert(1)</script>@x.com", "query_password": "open-sesame"}, "phone"),
    ],
)
def test_guest_needs_contact_and_query_password(client, app, product, data, message):
    response = buy(client, product, {"quantity": "1", **data})
    body = text(response)
    assert response.status_code == 400 and message in body
    assert "<script>alert(1)" not in body
    assert orders(app) == []


def test_field_answers_are_validated_and_escaped(client, app, owner):
    fields = [
        {"name": "account", "label": "Account", "pattern": "[0-9]{5,12}", "required": True},
        {"name": "note", "label": "Note", "required": False},
    ]
    with app.app_context():
        pid = card_product(keys=2, fields_json=json.dumps(fields)).id
    refused = buy(client, pid, {"quantity": "1", "field-account": "<b>x</b>", **GUEST})
    assert refused.status_code == 400 and "Account is not valid" in text(refused)
    assert "<b>x</b>" not in text(refused) and orders(app) == []
    script = "<script>alert(1)</script>"
    order_no = guest_order_with(client, pid, {"field-account": "123456", "field-note": script})
    body = text(client.get(f"/o/{order_no}"))
    assert "123456" in body and script not in body and "&lt;script&gt;" in body


def guest_order_with(client, pid, extra) -> str:
    response = buy(client, pid, {"quantity": "1", **GUEST, **extra})
    assert response.status_code == 302
    return response.headers["Location"].rsplit("/", 1)[1]


# free products -----------------------------------------------------------------------------


@pytest.fixture
def gift(app, owner):
    """A free product, with the sandbox on: the gateway a buyer would otherwise pick."""
    with app.app_context():
        registry().set_enabled("sandbox", True)
        return free_product(keys=3).id


def free_order(app, order_no) -> Order:
    """The order, checked to be a free one delivered at once with no money moved."""
    with app.app_context():
        order = Order.get(Order.order_no == order_no)
        assert (order.status, order.amount, order.gateway) == ("delivered", 0, "free")
        assert not Journal.select().where(Journal.ref == order_no).exists()
        assert {k: v for k, v in invariants.run_all().items() if v} == {}
        return order


def test_a_free_product_page_asks_for_no_payment_method(client, app, gift):
    body = text(client.get(f"/p/{gift}"))
    assert "Get it free" in body and "Buy now" not in body
    assert 'name="gateway"' not in body and "Online payment is not set up" not in body
    with app.app_context():
        paid = card_product(keys=1).id
    assert 'name="gateway"' in text(client.get(f"/p/{paid}"))


def test_a_guest_gets_a_free_product_at_once(client, app, gift):
    # a stale form may still name a gateway: there is nothing to pay, so none is asked
    response = buy(client, gift, {"quantity": "2", "gateway": "sandbox", **GUEST})
    assert response.status_code == 302, text(response)
    order_no = response.headers["Location"].rsplit("/", 1)[1]
    body = text(client.get(f"/o/{order_no}"))
    assert "Delivered" in body and "Pay with" not in body
    assert len(set(re.findall(r'<code class="key">(GIFT-[^<]+)</code>', body))) == 2
    assert free_order(app, order_no).contact == GUEST["contact"]
    assert stock(app, gift) == 1


def test_a_guest_still_needs_contact_and_query_password_for_a_free_product(client, app, gift):
    response = buy(client, gift, {"quantity": "1", "contact": "guest@example.com"})
    assert response.status_code == 400 and "query password of at least 4" in text(response)
    assert orders(app) == [] and stock(app, gift) == 3


def test_a_signed_in_buyer_gets_a_free_product_with_an_empty_wallet(client, app, gift):
    with app.app_context():
        buyer = customer()
        points = ledger.user_account(buyer.id, "points")
        ledger.transfer(ledger.system_account("points_pool"), points, 500, "test")
    login(client, "buyer@example.com", "buyer-pass-1")
    page = text(client.get(f"/p/{gift}"))
    assert "Get it free" in page and "Points to use" not in page  # nothing for them to pay
    response = buy(client, gift, {"quantity": "1", "gateway": "wallet"})
    assert response.status_code == 302, text(response)
    order_no = response.headers["Location"].rsplit("/", 1)[1]
    assert "GIFT-" in text(client.get(f"/o/{order_no}"))
    assert free_order(app, order_no).user_id == buyer.id
    with app.app_context():
        assert ledger.balance(ledger.user_account(buyer.id, "wallet")) == 0
        assert ledger.balance(points) == 500


def test_a_refunded_free_order_promises_no_money_back(client, app, gift):
    from shop.orders import service

    response = buy(client, gift, {"quantity": "1", **GUEST})
    order_no = response.headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        service.refund(free_order(app, order_no), "Promotion ended")
    body = text(client.get(f"/o/{order_no}"))
    assert "Promotion ended" in body and "GIFT-" not in body
    assert "pays the amount back" not in body


def test_a_zero_price_is_refused_for_a_product_not_marked_free(client, app, owner):
    """A price of 0 without "free" ticked (e.g. from before the flag) sells nothing."""
    with app.app_context():
        pid = card_product(keys=2, price=0, cost=0).id
    response = buy(client, pid, {"quantity": "1", **GUEST})
    assert response.status_code == 400
    assert "This product cannot be sold at no charge." in text(response)
    assert orders(app) == [] and stock(app, pid) == 2


# who may open an order ---------------------------------------------------------------------


def test_guest_without_the_session_gets_404(client, app, product):
    order_no = guest_order(client, app, product)
    pay(app, order_no)
    stranger = app.test_client()
    for path in (f"/o/{order_no}", f"/o/{order_no}/keys.txt"):
        assert stranger.get(path).status_code == 404
    assert stranger.get("/o/K000000AAAAAAAA").status_code == 404


def test_another_customers_order_is_404(client, app, product):
    with app.app_context():
        customer("alice@example.com")
        customer("bob@example.com")
    login(client, "alice@example.com", "buyer-pass-1")
    response = buy(client, product, {"quantity": "1"})
    order_no = response.headers["Location"].rsplit("/", 1)[1]
    assert client.get(f"/o/{order_no}").status_code == 200
    bob = app.test_client()
    login(bob, "bob@example.com", "buyer-pass-1")
    assert bob.get(f"/o/{order_no}").status_code == 404
    assert bob.get(f"/o/{order_no}/keys.txt").status_code == 404


def test_staff_reading_keys_leaves_an_audit_record(client, app, product):
    order_no = guest_order(client, app, product)
    pay(app, order_no)
    staff = app.test_client()
    login(staff, "owner@example.com", "owner-pass-1")
    body = text(staff.get(f"/o/{order_no}"))
    assert "KEY-" in body and "Confirm receipt" not in body
    with app.app_context():
        assert AuditLog.get_or_none(AuditLog.action == "order.keys.reveal") is not None


# order actions -----------------------------------------------------------------------------


def test_confirm_receipt_completes_the_order(client, app, product):
    order_no = guest_order(client, app, product)
    pay(app, order_no)
    assert "Confirm receipt" in text(client.get(f"/o/{order_no}"))
    response = submit(client, f"/o/{order_no}/confirm", {}, form_url=f"/o/{order_no}")
    assert response.status_code == 302
    [order] = orders(app)
    assert order.status == "completed"
    with app.app_context():
        assert ledger.balance(ledger.system_account("escrow")) == 0
    again = submit(client, f"/o/{order_no}/confirm", {}, form_url=f"/o/{order_no}")
    assert again.status_code == 409


def test_cancel_releases_stock(client, app, product):
    order_no = guest_order(client, app, product)
    assert stock(app, product) == 2
    response = submit(client, f"/o/{order_no}/cancel", {}, form_url=f"/o/{order_no}")
    assert response.status_code == 302
    assert orders(app)[0].status == "cancelled" and stock(app, product) == 3
    assert "Nothing was charged" in text(client.get(f"/o/{order_no}"))


def test_pay_button_starts_the_chosen_gateway(client, app, product, monkeypatch):
    offered = fake_gateways(monkeypatch)
    order_no = guest_order(client, app, product)
    page = text(client.get(f"/o/{order_no}"))
    assert "Pay with Fake Pay" in page and "Pay with Balance" not in page
    refused = submit(client, f"/o/{order_no}/pay", {"gateway": "wallet"}, form_url=f"/o/{order_no}")
    assert refused.status_code == 400 and offered["wallet"].started == []
    response = submit(client, f"/o/{order_no}/pay", {"gateway": "fake"}, form_url=f"/o/{order_no}")
    assert response.status_code == 302 and orders(app)[0].status == "delivered"


def test_refunded_order_shows_the_reason(client, app, product):
    from shop.orders import service

    order_no = guest_order(client, app, product)
    pay(app, order_no)
    with app.app_context():
        service.refund(Order.get(Order.order_no == order_no), "Key region mismatch")
    body = text(client.get(f"/o/{order_no}"))
    assert "Refunded" in body and "Key region mismatch" in body and "KEY-" not in body


# look-up -----------------------------------------------------------------------------------


def lookup(client, order_no, contact, password):
    data = {"order_no": order_no, "contact": contact, "query_password": password}
    return submit(client, "/lookup", data)


def normalised(response) -> tuple[int, str]:
    """The response with what the visitor typed and the CSRF token taken out."""
    return response.status_code, re.sub(r'value="[^"]*"', "", text(response))


def test_lookup_opens_the_order_in_a_new_browser(client, app, product):
    order_no = guest_order(client, app, product)
    pay(app, order_no)
    other = app.test_client()
    assert other.get(f"/o/{order_no}").status_code == 404
    response = lookup(other, order_no, " Guest@Example.com ", "open-sesame")
    assert response.status_code == 302 and response.headers["Location"].endswith(order_no)
    assert "KEY-" in text(other.get(f"/o/{order_no}"))


def test_every_wrong_lookup_looks_the_same_then_429(client, app, product):
    order_no = guest_order(client, app, product)
    other = app.test_client()
    wrong = [
        ("K000000WRONGNUMBER", "guest@example.com", "open-sesame"),
        (order_no, "someone@example.com", "open-sesame"),
        (order_no, "guest@example.com", "wrong-password"),
        (order_no, "13800138000", "open-sesame"),
    ]
    answers = {normalised(lookup(other, *w)) for w in wrong}
    assert len(answers) == 1
    [(status, body)] = answers
    assert status == 400 and "No order matches" in body
    for _ in range(10 - len(wrong)):
        assert lookup(other, *wrong[0]).status_code == 400
    blocked = lookup(other, order_no, "guest@example.com", "open-sesame")
    assert blocked.status_code == 429 and "Too many attempts" in text(blocked)
    assert other.get(f"/o/{order_no}").status_code == 404


def test_a_right_lookup_does_not_use_up_the_limit(client, app, product):
    """Only wrong answers count: a guest who finds their order between wrong tries still
    has the full number of tries."""
    order_no = guest_order(client, app, product)
    other = app.test_client()
    for _ in range(9):
        assert lookup(other, "K000000WRONGNUMBER", "guest@example.com", "x").status_code == 400
    assert lookup(other, order_no, "guest@example.com", "open-sesame").status_code == 302
    assert lookup(other, "K000000WRONGNUMBER", "guest@example.com", "x").status_code == 400
    assert lookup(other, order_no, "guest@example.com", "open-sesame").status_code == 429


# history, buy again, wallet ----------------------------------------------------------------


def test_history_lists_orders_and_buy_again_places_a_new_one(client, app, owner):
    fields = [{"name": "account", "label": "Account", "pattern": "[0-9]{5,12}"}]
    with app.app_context():
        pid = card_product(keys=5, fields_json=json.dumps(fields)).id
        customer()
    login(client, "buyer@example.com", "buyer-pass-1")
    first = buy(client, pid, {"quantity": "2", "field-account": "123456"})
    assert first.status_code == 302
    page = text(client.get("/orders"))
    [order] = orders(app)
    assert order.order_no in page and "Buy again" in page
    token = csrf_from(client, "/orders")
    form = re.search(r'<form method="post" action="(/p/\d+/buy)".*?</form>', page, re.S)
    data = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(0)))
    data["csrf_token"] = token
    again = client.post(form.group(1), data=data)
    assert again.status_code == 302
    first_order, second = orders(app)
    assert second.order_no != first_order.order_no
    assert second.quantity == 2 and second.user_id == order.user_id
    assert json.loads(second.fields) == json.loads(first_order.fields) == {"account": "123456"}
    with app.app_context():
        Product.update(visible=False).where(Product.id == pid).execute()
    assert "Buy again" not in text(client.get("/orders"))


def test_history_is_paginated_and_needs_sign_in(client, app, owner):
    assert client.get("/orders").status_code == 302
    with app.app_context():
        pid = card_product(keys=25).id
        user = customer()
        from shop.orders import service

        numbers = [service.place_order(pid, 1, user=user).order_no for _ in range(21)]
    login(client, "buyer@example.com", "buyer-pass-1")
    first = text(client.get("/orders"))
    assert numbers[-1] in first and numbers[0] not in first and "Older" in first
    second = text(client.get("/orders?page=2"))
    assert numbers[0] in second and numbers[-1] not in second
    assert client.get("/orders?page=-5").status_code == 200


def test_wallet_shows_balance_and_tops_up_through_a_gateway(client, app, owner, monkeypatch):
    offered = fake_gateways(monkeypatch)
    with app.app_context():
        user = customer(wallet=500)
    login(client, "buyer@example.com", "buyer-pass-1")
    page = text(client.get("/wallet"))
    assert "¥5.00" in page and 'value="fake"' in page and 'value="wallet"' not in page
    for bad in ("abc", "0", "1.234", "-5"):
        refused = submit(client, "/wallet", {"amount": bad, "gateway": "fake"})
        assert refused.status_code == 400
    response = submit(client, "/wallet", {"amount": "10.00", "gateway": "fake"})
    assert response.status_code == 302
    [payable] = offered["fake"].started
    assert payable.amount == 1000 and payable.return_path == "/wallet"
    with app.app_context():
        assert TopUp.get(TopUp.topup_no == payable.ref).status == "paid"
        assert ledger.balance(ledger.user_account(user.id, "wallet")) == 1500
    assert "¥15.00" in text(client.get("/wallet"))


def pay_on_the_order_page(client, order_no, gateway):
    page = f"/o/{order_no}"
    return submit(client, f"{page}/pay", {"gateway": gateway}, form_url=page)


def test_a_short_wallet_lands_on_the_order_then_pays_that_order(client, app, product):
    """The wallet cannot cover the price: the buyer lands on the order's page with the reason,
    their balance and a top-up link beside every way to pay. Trying the wallet again there
    retries the same order, so the stock is held once however often they try; once topped
    up, the wallet page leads back to the order and pays it."""
    with app.app_context():
        registry().set_enabled("sandbox", True)  # another way to pay
        buyer = customer(wallet=500)
    login(client, "buyer@example.com", "buyer-pass-1")
    response = buy(client, product, {"quantity": "1", "gateway": "wallet"})
    [order] = orders(app)
    order_page = f"/o/{order.order_no}"
    assert response.status_code == 303 and response.headers["Location"] == order_page
    page = text(client.get(order_page))
    assert "Your balance is too low for this order." in page and "Awaiting payment" in page
    assert 'value="wallet"' in page and 'value="sandbox"' in page
    assert '<dt>Balance</dt><dd>¥5.00 · <a href="/wallet">Top up</a></dd>' in page
    assert stock(app, product) == 2

    again = pay_on_the_order_page(client, order.order_no, "wallet")
    assert again.status_code == 303 and again.headers["Location"] == order_page
    assert "Your balance is too low for this order." in text(client.get(order_page))
    assert len(orders(app)) == 1 and stock(app, product) == 2

    with app.app_context():
        payments.credit_wallet(buyer.id, 500)  # as a top-up through a gateway would
    assert f'href="{order_page}"' in text(client.get("/wallet"))
    paid = pay_on_the_order_page(client, order.order_no, "wallet")
    assert paid.headers["Location"] == order_page
    page = text(client.get(order_page))
    assert "Your keys" in page and "too low" not in page
    assert [o.status for o in orders(app)] == ["delivered"] and stock(app, product) == 2
    assert order.order_no not in text(client.get("/wallet"))  # nothing left to pay
