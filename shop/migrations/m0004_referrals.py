"""Distribution: commission records and per-product commission rates."""

from shop.distribution.models import Commission, ProductRates

TABLES = [Commission, ProductRates]


def up(database):
    database.create_tables(TABLES)
