import pytest

from shop import migrations
from shop.db import db
from shop.migrations import m0009_lean_indexes as lean_indexes
from shop.settings.models import Setting


@pytest.mark.pg
def test_fresh_database_is_migrated_and_rerun_changes_nothing(database):
    assert migrations.pending() == []
    Setting.create(key="shop.name", value='"Mine"')
    assert migrations.run() == []
    assert Setting.get_by_id("shop.name").value == '"Mine"'


def test_upgrade_applies_only_missing_versions(database, monkeypatch):
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, "m0001_foundation"])
    # the appended entry stands for a later migration: it is pending, and applying it
    # on top of existing data keeps that data (create_tables is safe on existing tables)
    Setting.create(key="k", value="1")
    assert migrations.pending() == ["m0001_foundation"]


def _indexes(tables) -> set:
    return {
        (i.table, i.name, tuple(i.columns), i.unique, "WHERE" in i.sql.upper())
        for table in tables
        for i in db.get_indexes(table)
    }


@pytest.mark.pg
def test_lean_indexes_upgrade_an_older_shop_to_the_fresh_index_set(database):
    """m0009 on a shop migrated before it ends with exactly a fresh shop's indexes: the seven
    unused ones gone, the jobs' partial indexes there."""
    tables = ("order", "card_key", "journal")
    fresh = _indexes(tables)
    old = {
        "order_contact_index": ("order", "contact_index"),
        "order_referrer_id": ("order", "referrer_id"),
        "order_expires_at": ("order", "expires_at"),
        "order_settle_after": ("order", "settle_after"),
        "card_key_product_id": ("card_key", "product_id"),
        "journal_kind": ("journal", "kind"),
        "journal_created_at": ("journal", "created_at"),
    }
    for name in ("order_expiring", "order_settling"):
        db.execute_sql(f'DROP INDEX "{name}"')
    for name, (table, column) in old.items():
        db.execute_sql(f'CREATE INDEX "{name}" ON "{table}" ("{column}")')
    assert {i[1] for i in _indexes(tables)} >= set(old)

    lean_indexes.up(db)

    assert _indexes(tables) == fresh
    assert {"order_expiring", "order_settling"} <= {i[1] for i in fresh}
    assert not set(old) & {i[1] for i in fresh}
