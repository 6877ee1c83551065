"""Helpers for selling tests: a product with keys, a funded customer."""

from shop import ledger
from shop.accounts import service as accounts
from shop.catalog.models import Product
from shop.inventory import service as inventory
from shop.payments import service as payments


def card_product(keys: int = 5, price: int = 1000, cost: int = 600, **extra) -> Product:
    product = Product.create(
        name="Game Card 10", kind="card", price=price, cost=cost, stock=0, **extra
    )
    if keys:
        inventory.import_keys(product, [f"KEY-{product.id}-{i:05d}" for i in range(keys)])
    return Product.get_by_id(product.id)


def customer(email: str = "buyer@example.com", wallet: int = 0):
    user = accounts.register(email, "buyer-pass-1")
    if wallet:
        payments.credit_wallet(user.id, wallet)
    return user


def balance(code_or_account) -> int:
    return ledger.balance(code_or_account)
