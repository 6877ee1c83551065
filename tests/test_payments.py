"""The payment routes and the sandbox and wallet gateways, driven over HTTP the way the
checkout will drive them: ledger, stock and order status checked after every step."""

import pytest
from conftest import login
from paying import add_checkout_stand_in
from selling import balance, card_product, customer

from shop import invariants, ledger
from shop.inventory.models import CardKey
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import service as payments
from shop.payments.models import Payment
from shop.plugins import registry

BANNER = "Sandbox payments are on"


@pytest.fixture
def shop(app, owner):
    add_checkout_stand_in(app)
    with app.app_context():
        yield app


def guest_order(product, qty=1):
    return orders.place_order(
        product.id, qty, contact="guest@example.com", query_password="open-sesame"
    )


def escrow() -> int:
    return balance(ledger.system_account("escrow"))


def key_states(order) -> list[str]:
    return sorted(k.state for k in CardKey.select().where(CardKey.order_id == order.id))


def healthy():
    assert {k: v for k, v in invariants.run_all().items() if v} == {}


def test_callback_routes_exist_only_for_enabled_gateways_that_take_callbacks(shop, client):
    assert client.get("/pay/nope/notify").status_code == 404
    assert client.post("/pay/sandbox/notify").status_code == 404  # installed, disabled
    assert client.get("/pay/epay/return").status_code == 404  # installed, disabled
    assert client.get("/pay/wallet/notify").status_code == 404  # enabled, pays in-house
    registry().set_enabled("sandbox", True)
    assert client.get("/pay/sandbox/notify").status_code == 404  # pays at once, no callbacks
    assert set(payments.gateways()) == {"sandbox", "wallet"}


def test_payables_name_the_order_and_where_the_buyer_comes_back(shop):
    order = guest_order(card_product(keys=3), 2)
    payable = payments.payable_for_order(order)
    assert (payable.ref, payable.amount) == (order.order_no, 2000)
    assert payable.subject == "Game Card 10 x2"
    assert payable.return_path == f"/o/{order.order_no}"
    assert payments.return_path(order.order_no) == f"/o/{order.order_no}"
    assert payments.return_path("K999NOSUCHORDER") == "/"
    assert payments.return_path("//evil.example/x") == "/"


def test_sandbox_is_off_until_staff_enable_it(shop):
    assert "sandbox" not in payments.gateways()
    with pytest.raises(payments.PaymentError):
        payments.gateway("sandbox")


def test_sandbox_pays_and_delivers_at_once(shop, client):
    registry().set_enabled("sandbox", True)
    order = guest_order(card_product(price=1000))
    answer = client.get(f"/test/pay/{order.order_no}/sandbox")
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/o/{order.order_no}"
    order = Order.get_by_id(order.id)
    assert order.status == "delivered" and order.gateway == "sandbox"
    assert len(orders.delivered_items(order)) == 1
    (payment,) = Payment.select()
    assert payment.gateway == "sandbox" and payment.txn_id.startswith("sbx-")
    assert (payment.ref, payment.amount, payment.outcome) == (order.order_no, 1000, "paid")
    assert escrow() == 1000
    assert balance(ledger.system_account("gateway:sandbox")) == -1000
    healthy()


def test_a_sandbox_payment_for_a_cancelled_order_goes_back_to_the_payer(shop, client):
    registry().set_enabled("sandbox", True)
    order = guest_order(card_product())
    orders.cancel(order)
    answer = client.get(f"/test/pay/{order.order_no}/sandbox")
    # a payment for a cancelled order is money the payer gets back, never goods
    assert answer.status_code == 303
    assert Order.get_by_id(order.id).status == "cancelled"
    assert Payment.get().outcome == "duplicate"
    assert escrow() == 0
    assert balance(ledger.system_account("refunds_payable")) == 1000
    assert key_states(order) == []
    healthy()


def test_sandbox_tops_a_wallet_up(shop, client):
    registry().set_enabled("sandbox", True)
    buyer = customer()
    topup = payments.create_topup(buyer, 5000, "sandbox")
    answer = client.get(f"/test/topup/{topup.topup_no}/sandbox")
    assert (answer.status_code, answer.headers["Location"]) == (303, "/wallet")
    assert balance(ledger.user_account(buyer.id, "wallet")) == 5000
    healthy()


def test_banner_shows_on_storefront_pages_exactly_while_the_sandbox_is_on(shop, client):
    assert BANNER not in client.get("/").get_data(as_text=True)
    registry().set_enabled("sandbox", True)
    for page in ("/", "/login", "/pay/nope/notify"):
        assert BANNER in client.get(page).get_data(as_text=True), page
    registry().set_enabled("sandbox", False)
    assert BANNER not in client.get("/").get_data(as_text=True)


def test_wallet_pays_a_signed_in_buyers_order(shop, client):
    buyer = customer(wallet=1500)
    order = orders.place_order(card_product(price=1000).id, 1, user=buyer)
    login(client, "buyer@example.com", "buyer-pass-1")
    answer = client.get(f"/test/pay/{order.order_no}/wallet")
    assert (answer.status_code, answer.headers["Location"]) == (303, f"/o/{order.order_no}")
    order = Order.get_by_id(order.id)
    assert order.status == "delivered" and order.gateway == "wallet"
    assert balance(ledger.user_account(buyer.id, "wallet")) == 500
    assert escrow() == 1000
    assert key_states(order) == ["sold"]
    assert Payment.select().count() == 0  # money moved inside the shop: no gateway payment
    healthy()


def test_wallet_short_of_the_price_says_so_on_the_order_and_changes_nothing(shop, client):
    buyer = customer(wallet=999)
    order = orders.place_order(card_product(price=1000).id, 1, user=buyer)
    login(client, "buyer@example.com", "buyer-pass-1")
    answer = client.get(f"/test/pay/{order.order_no}/wallet")
    assert (answer.status_code, answer.headers["Location"]) == (303, f"/o/{order.order_no}")
    assert "balance is too low" in client.get(answer.headers["Location"]).get_data(as_text=True)
    assert Order.get_by_id(order.id).status == "pending"
    assert balance(ledger.user_account(buyer.id, "wallet")) == 999
    assert escrow() == 0
    assert key_states(order) == ["reserved"]
    healthy()


def test_wallet_asks_a_guest_to_sign_in(shop, client):
    customer(wallet=5000)
    order = guest_order(card_product())
    answer = client.get(f"/test/pay/{order.order_no}/wallet")
    assert answer.status_code == 403
    assert "Sign in" in answer.get_data(as_text=True)
    assert Order.get_by_id(order.id).status == "pending"


@pytest.mark.parametrize("whose", ["guest", "another buyer"])
def test_wallet_never_pays_an_order_that_is_not_the_signed_in_buyers(shop, client, whose):
    buyer = customer(wallet=5000)
    product = card_product()
    if whose == "guest":
        order = guest_order(product)
    else:
        order = orders.place_order(product.id, 1, user=customer("other@example.com", 5000))
    login(client, "buyer@example.com", "buyer-pass-1")
    answer = client.get(f"/test/pay/{order.order_no}/wallet")
    assert answer.status_code == 403
    assert Order.get_by_id(order.id).status == "pending"
    assert balance(ledger.user_account(buyer.id, "wallet")) == 5000
    assert escrow() == 0


def test_the_wallet_cannot_top_itself_up(shop):
    assert payments.gateway("wallet").supports_topup is False
    with pytest.raises(payments.PaymentError):
        payments.create_topup(customer(), 1000, "wallet")
