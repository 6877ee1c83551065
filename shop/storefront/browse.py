"""The catalog as customers see it, read in as few queries as a page can afford.

Storefront pages are the hottest paths of the shop, so each read here is one query: stock is
the `Product.stock` column kept by the inventory's own transactions, never a count of keys,
and a product page reads its category through a join rather than a second query. Listings
leave out `description`, the one large column, which only the product page shows.
"""

from collections import defaultdict

from peewee import JOIN

from shop.catalog.models import Category, Product

SEARCH_MAX_LENGTH = 60
SEARCH_LIMIT = 50
LISTED_COLUMNS = [f for f in Product._meta.sorted_fields if f is not Product.description]


def _listed():
    """Visible products whose category (if any) is visible too, in the owner's order."""
    return (
        Product.select(*LISTED_COLUMNS)
        .join(Category, JOIN.LEFT_OUTER)
        .where((Product.visible == True) & (Category.id.is_null() | (Category.visible == True)))  # noqa: E712
        .order_by(Product.sort_order, Product.id)
    )


def shelves() -> list[tuple[Category | None, list[Product]]]:
    """The home page: each visible category with its products (empty ones left out), then
    products without a category. Two queries whatever the size of the catalog."""
    by_category = defaultdict(list)
    for product in _listed():
        by_category[product.category_id].append(product)
    categories = (
        Category.select()
        .where(Category.visible == True)  # noqa: E712
        .order_by(Category.sort_order, Category.id)
    )
    rows = [(c, by_category[c.id]) for c in categories if by_category.get(c.id)]
    if by_category.get(None):
        rows.append((None, by_category[None]))
    return rows


def category(slug: str) -> Category | None:
    return Category.get_or_none((Category.slug == slug) & (Category.visible == True))  # noqa: E712


def category_products(category_id: int) -> list[Product]:
    return list(_listed().where(Product.category == category_id))


def search(text: str) -> list[Product]:
    """Products whose name contains `text`, case-insensitively (LIKE wildcards in the text
    are escaped by peewee). The text is cut to a bounded length so a query stays cheap."""
    text = (text or "").strip()[:SEARCH_MAX_LENGTH]
    if not text:
        return []
    return list(_listed().where(Product.name.contains(text)).limit(SEARCH_LIMIT))


def product(product_id: int) -> Product | None:
    """One visible product with its category, in one query: the product page's whole read."""
    return (
        Product.select(Product, Category)
        .join(Category, JOIN.LEFT_OUTER)
        .where((Product.id == product_id) & (Product.visible == True))  # noqa: E712
        .first()
    )
