import pytest

from shop import migrations
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
