"""Helpers for selling tests: a product with keys, a free one, a funded customer, a gateway
that pays at once."""

from flask import redirect

from shop import ledger
from shop.accounts import service as accounts
from shop.catalog import service as catalog
from shop.catalog.models import Product
from shop.inventory import service as inventory
from shop.orders import service as orders
from shop.payments import service as payments
from shop.payments.gateway import Gateway


def card_product(keys: int = 5, price: int = 1000, cost: int = 600, **extra) -> Product:
    product = Product.create(
        name="Game Card 10", kind="card", price=price, cost=cost, stock=0, **extra
    )
    if keys:
        inventory.import_keys(product, [f"KEY-{product.id}-{i:05d}" for i in range(keys)])
    return Product.get_by_id(product.id)


def free_product(keys: int = 3) -> Product:
    """A card product given away, added as staff add one: price 0 with "free" ticked."""
    product, _warnings = catalog.add_product(
        {"name": "Welcome Gift", "price": "0.00", "free": "1", "visible": "1"}
    )
    inventory.import_keys(product, [f"GIFT-{product.id}-{i:05d}" for i in range(keys)])
    return Product.get_by_id(product.id)


def pending_order(product: Product, user=None):
    """One key of `product` ordered at checkout, unpaid: a guest's (with a contact and a query
    password) unless `user` is given."""
    if user is None:
        return orders.place_order(product.id, 1, contact="guest@example.com", query_password="pw12")
    return orders.place_order(product.id, 1, user=user)


def customer(email: str = "buyer@example.com", wallet: int = 0):
    user = accounts.register(email, "buyer-pass-1")
    if wallet:
        payments.credit_wallet(user.id, wallet)
    return user


def balance(code_or_account) -> int:
    return ledger.balance(code_or_account)


class FakeGateway(Gateway):
    """A gateway that pays at once, like the sandbox plugin, recording what it was asked."""

    def __init__(self, name, title):
        self.name, self.title, self.started = name, title, []

    def start(self, payable):
        self.started.append(payable)
        payments.record_payment(self.name, f"txn-{payable.ref}", payable.ref, payable.amount)
        return redirect(payable.return_path)


def fake_gateways(monkeypatch) -> dict:
    """Offer the fake gateway and a fake wallet at checkout instead of the enabled plugins."""
    offered = {"fake": FakeGateway("fake", "Fake Pay"), "wallet": FakeGateway("wallet", "Balance")}
    monkeypatch.setattr(payments, "gateways", lambda: offered)
    return offered
