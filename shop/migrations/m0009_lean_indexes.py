"""Only the indexes something looks up by: every index is one more B-tree written, under the
write lock, by every order a flash sale takes (seven of them cost the sale ~15% of its rate).

Dropped: order contact index and referrer (never searched: a guest's look-up goes by order
number), card key product (the product's unique and stock indexes start with it), journal kind
and created_at (journals are found by ref and idem_key). The expiry and settlement jobs' indexes
become partial ones holding only the orders those jobs can pick (see `Order`).
"""

from shop.orders.models import Order

DROPPED = (
    "order_contact_index",
    "order_referrer_id",
    "order_expires_at",
    "order_settle_after",
    "card_key_product_id",
    "journal_kind",
    "journal_created_at",
)


def up(database):
    for name in DROPPED:
        database.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
    Order._schema.create_indexes(safe=True)
