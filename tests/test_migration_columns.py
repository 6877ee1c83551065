"""Adding columns to existing tables (`add_missing_columns`) keeps every row."""

import pytest
from peewee import SQL, BigIntegerField, CharField, ForeignKeyField, IntegerField, Model

from shop.db import db
from shop.migrations import add_missing_columns


class Parent(Model):
    name = CharField()

    class Meta:
        database = db
        table_name = "m_parent"


class Child(Model):
    parent = ForeignKeyField(Parent, on_delete="CASCADE")

    class Meta:
        database = db
        table_name = "m_child"


@pytest.mark.pg
def test_a_not_null_column_is_added_without_touching_rows_that_reference_the_table(database):
    """SQLite cannot add NOT NULL to a column in place; rebuilding the table to do it would
    drop the old one, and with foreign keys on that deletes every child row."""
    db.create_tables([Parent, Child])
    Child.create(parent=Parent.create(name="p"))
    Parent._meta.add_field("score", BigIntegerField(default=0, constraints=[SQL("DEFAULT 0")]))
    try:
        with db.atomic():
            add_missing_columns(Parent, "score")
        assert Child.select().count() == 1
        assert [p.score for p in Parent.select()] == [0]
        Parent._meta.add_field("bare", IntegerField(default=0))
        with pytest.raises(ValueError, match="SQL DEFAULT"):
            add_missing_columns(Parent, "bare")
    finally:
        for name in ("score", "bare"):
            if name in Parent._meta.fields:
                Parent._meta.remove_field(name)
        db.drop_tables([Child, Parent])
