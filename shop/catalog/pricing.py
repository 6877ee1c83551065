"""What a unit costs this buyer: the product price, a wholesale tier for the quantity, the
buyer's distributor level price, then any plugin adjustment. The server computes every
price; a price sent by a client is never read."""

from shop import plugins
from shop.catalog.models import Product
from shop.levels.service import member_price


def tier_price(product: Product, quantity: int) -> int:
    price = product.price
    for min_qty, unit in sorted(product.tiers):
        if quantity >= min_qty:
            price = min(price, unit)
    return price


def unit_price(product: Product, quantity: int = 1, user=None) -> int:
    """The unit price in fen. The level price and plugin adjustments can only lower it: the
    lowest offer wins, so two discounts never stack into a negative price."""
    price = member_price(product, tier_price(product, quantity), user)
    offers = [p for p in plugins.fire("price_adjust", product=product, user=user, price=price)]
    valid = [p for p in offers if type(p) is int and p >= 0]
    return min([price, *valid])
