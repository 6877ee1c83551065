"""The admin's order pages: list and filters, the order page with its secrets masked, the
audited reveal, and the staff actions (refund, settle, manual delivery, release)."""

import pytest
from conftest import csrf_from, login, submit
from selling import card_product

from shop import ledger, plugins
from shop.accounts import service as accounts
from shop.audit.models import AuditLog
from shop.catalog.models import Product
from shop.inventory import service as inventory
from shop.inventory.models import CardKey
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import service as payments

SECRET = "STEAM-ABCD-EFGH-IJKL-MNOP"


@pytest.fixture
def staff(client, owner):
    login(client, *owner)
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def buy(product, contact="guest@example.com", txn=None, fields=None):
    order = orders.place_order(
        product.id, 1, contact=contact, query_password="open-sesame", fields=fields
    )
    if txn:
        payments.record_payment("sandbox", txn, order.order_no, order.amount)
    return Order.get_by_id(order.id)


@pytest.fixture
def delivered(app):
    with app.app_context():
        product = card_product(keys=0, price=5000, cost=4600)
        inventory.import_keys(product, [SECRET, "OTHER-KEY-0000-0000-0000"])
        return buy(product, txn="t-card").order_no


@pytest.fixture
def manual(app):
    """A paid order of a manual product with a recharge-style field, waiting for staff."""
    with app.app_context():
        product = Product.create(
            name="Netflix 1 month",
            kind="manual",
            price=3000,
            cost=2500,
            fields_json='[{"name": "account", "label": "Account", "pattern": "", '
            '"required": true}]',
        )
        return buy(product, "13812345678", "t-manual", {"account": "viewer@example.org"}).order_no


def order(app, order_no) -> Order:
    with app.app_context():
        return Order.get(Order.order_no == order_no)


def page(order_no) -> str:
    return f"/admin/orders/{order_no}"


def act(staff, order_no, action, data=None):
    return submit(staff, f"{page(order_no)}/{action}", data or {}, form_url=page(order_no))


def test_orders_list_filters_and_search(app, staff, delivered, manual):
    listing = text(staff.get("/admin/orders"))
    assert delivered in listing and manual in listing
    paid = text(staff.get("/admin/orders?status=paid"))
    assert manual in paid and delivered not in paid
    found = text(staff.get(f"/admin/orders?q={delivered[-12:].lower()}"))
    assert delivered in found and manual not in found
    assert "No orders match" in text(staff.get("/admin/orders?q=NOSUCHORDER"))


def test_order_page_masks_and_reveal_is_audited(app, staff, delivered):
    shown = text(staff.get(page(delivered)))
    assert "g***@example.com" in shown and "guest@example.com" not in shown
    assert SECRET not in shown and "STEA*****************MNOP" in shown
    for status in ("pending", "paid", "delivered"):
        assert f"status-{status}" in shown  # the timeline
    revealed = act(staff, delivered, "reveal")
    assert revealed.status_code == 200
    assert SECRET in text(revealed) and "guest@example.com" in text(revealed)
    with app.app_context():
        [audit] = AuditLog.select().where(AuditLog.action == "order.reveal")
    assert audit.target == f"order:{delivered}" and audit.actor_id is not None
    assert staff.get(f"{page(delivered)}/reveal").status_code == 405


def test_refund_needs_a_reason_and_shows_it(app, staff, delivered):
    refused = act(staff, delivered, "refund", {"reason": "  "})
    assert refused.status_code == 400 and "reason" in text(refused)
    assert order(app, delivered).status == "delivered"
    done = act(staff, delivered, "refund", {"reason": "卡密无效 The key was already used"})
    assert done.status_code == 303
    refunded = order(app, delivered)
    assert refunded.status == "refunded"
    shown = text(staff.get(page(delivered)))
    assert "卡密无效 The key was already used" in shown
    with app.app_context():
        assert ledger.balance(ledger.system_account("escrow")) == 0
        assert CardKey.get(CardKey.order_id == refunded.id).state == "void"
    again = act(staff, delivered, "refund", {"reason": "twice"})
    assert again.status_code == 409 and "cannot be refunded" in text(again)


def test_settle_now(app, staff, delivered):
    assert act(staff, delivered, "settle").status_code == 303
    assert order(app, delivered).status == "completed"
    with app.app_context():
        assert ledger.balance(ledger.system_account("revenue")) == 400
        assert ledger.balance(ledger.system_account("cost_of_goods")) == 4600
    again = act(staff, delivered, "settle")
    assert again.status_code == 409 and "only delivered orders complete" in text(again)


def test_manual_delivery(app, staff, manual):
    shown = text(staff.get(page(manual)))
    assert "138****5678" in shown and "13812345678" not in shown
    assert "viewer@example.org" not in shown and "Deliver by hand" in shown
    empty = act(staff, manual, "deliver", {"items": "\n  \n"})
    assert empty.status_code == 400 and "one item per line" in text(empty)
    assert order(app, manual).status == "paid"
    done = act(staff, manual, "deliver", {"items": "Netflix login: viewer / s3cret-pass\n"})
    assert done.status_code == 303
    assert order(app, manual).status == "delivered"
    shown = text(staff.get(page(manual)))
    assert "s3cret-pass" not in shown and "Deliver by hand" not in shown
    assert "s3cret-pass" in text(act(staff, manual, "reveal"))


def test_card_orders_are_not_delivered_by_hand(app, staff):
    with app.app_context():
        product = card_product(keys=1)
        order_no = buy(product).order_no  # pending: its key is reserved
    refused = act(staff, order_no, "deliver", {"items": "made up"})
    assert refused.status_code == 400 and "Card orders deliver their card keys" in text(refused)
    assert order(app, order_no).status == "pending"


def test_release_a_held_order(app, staff, monkeypatch):
    with app.app_context():
        product = card_product(keys=1)
        with monkeypatch.context() as risky:
            risky.setattr(plugins, "fire", lambda hook, **kw: ["velocity"] * (hook == "risk_check"))
            order_no = buy(product, txn="t-held").order_no
    assert order(app, order_no).status == "held"
    dashboard = text(staff.get("/admin/"))
    assert "Held for review" in dashboard
    assert act(staff, order_no, "release").status_code == 303
    assert order(app, order_no).status == "delivered"
    again = act(staff, order_no, "release")
    assert again.status_code == 409 and "not held" in text(again)


def test_dashboard_queues(app, staff, delivered, manual):
    with app.app_context():
        Product.update(low_stock_threshold=5).execute()
    cards = text(staff.get("/admin/"))

    def card(label):
        value = cards.split(f'<span class="stat-label">{label}</span>')[0]
        return value.rsplit('<span class="stat-value">', 1)[1].split("<")[0]

    assert card("Paid, awaiting delivery") == "1"
    assert card("Held for review") == "0"
    assert card("Low-stock products") == "1"
    assert card("Orders today") == "2"
    assert card("Sales today") == "80.00"


def test_customers_cannot_see_or_act(app, client, owner, delivered):
    with app.app_context():
        accounts.register("cust@example.com", "cust-pass-1")
    login(client, "cust@example.com", "cust-pass-1")
    assert client.get("/admin/orders").status_code == 403
    assert client.get(page(delivered)).status_code == 403
    token = csrf_from(client, "/account")
    for action in ("refund", "reveal", "settle"):
        response = client.post(
            f"{page(delivered)}/{action}", data={"csrf_token": token, "reason": "mine now"}
        )
        assert response.status_code == 403
    assert order(app, delivered).status == "delivered"


def test_unknown_order_is_404(staff):
    assert staff.get(page("K000000NOPE")).status_code == 404
