"""The levels-and-points migration: a database from before it upgrades in place, keeps its
data and ends with the same schema as a fresh one."""

import pytest
from selling import card_product, customer

from shop import crypto, migrations
from shop.db import db
from shop.levels.models import Level, LevelPrice
from shop.migrations import SchemaMigration
from shop.orders import service as orders
from shop.orders.models import Order, OrderEvent
from shop.points.models import ReferralAward, Violation


@pytest.fixture(autouse=True)
def keyring():
    crypto.configure(b"k" * 32)


def schema(table: str):
    """Columns (by name: an added column comes last, which nothing depends on) and indexes."""
    columns = sorted(
        (c.name, c.data_type.lower(), c.null, c.default) for c in db.get_columns(table)
    )
    indexes = sorted((i.name, tuple(i.columns), i.unique) for i in db.get_indexes(table))
    return columns, indexes


@pytest.mark.pg
def test_a_database_from_before_levels_and_points_upgrades_in_place(database):
    buyer = customer()
    order = orders.place_order(card_product().id, 1, user=buyer)
    orders.cancel(order, actor=buyer)
    fresh = {table: schema(table) for table in ("users", "order")}

    # put the database back as it was before the migration
    db.drop_tables([Violation, ReferralAward, LevelPrice, Level])
    db.execute_sql('DROP INDEX "users_level_id"')
    db.execute_sql('ALTER TABLE "users" DROP COLUMN "level_id"')
    db.execute_sql('ALTER TABLE "order" DROP COLUMN "points_used"')
    db.execute_sql('ALTER TABLE "order" DROP COLUMN "points_value"')
    version = migrations.MIGRATIONS.index("m0005_levels_points") + 1
    SchemaMigration.delete().where(SchemaMigration.version == version).execute()

    assert migrations.run() == ["m0005_levels_points"]
    assert {table: schema(table) for table in ("users", "order")} == fresh
    order = Order.get_by_id(order.id)
    assert (order.points_used, order.points_value, order.status) == (0, 0, "cancelled")
    assert OrderEvent.select().where(OrderEvent.order == order.id).count() == 2
    assert Level.select().count() == 0
