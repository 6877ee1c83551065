"""Versioned schema migrations, applied in order, upgrading a database in place.

Each migration is a module `mNNNN_name.py` with an `up(database)` function and is listed in
`MIGRATIONS`. Applied versions are recorded in `schema_migrations`; nothing is ever dropped and
recreated. A migration that creates a table creates it from the model class as it is when the
table is introduced; a later migration that adds a column goes through `add_missing_columns`,
which adds only what the table lacks, so a fresh database and an upgraded one end identical.

Migrations run under a lock (an IMMEDIATE transaction on SQLite, an advisory lock on
PostgreSQL) so several processes starting at once apply each step exactly once.
"""

import importlib

from peewee import CharField, DateTimeField, IntegerField
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from shop.clock import now
from shop.db import BaseModel, db, is_postgres, lock_for_transaction

MIGRATIONS = [
    "m0001_foundation",
    "m0002_selling",
    "m0003_api",
    "m0004_referrals",
    "m0005_levels_points",
    "m0006_withdrawals",
    "m0007_level_commission",
    "m0008_gateway_refunds",
    "m0009_lean_indexes",
]

_PG_LOCK_KEY = 0x6B617368  # "kash"


class SchemaMigration(BaseModel):
    version = IntegerField(primary_key=True)
    name = CharField()
    applied_at = DateTimeField()

    class Meta:
        table_name = "schema_migrations"


def add_missing_columns(model, *field_names):
    """Add the named fields of `model` to its table where the column is not there yet.

    A NOT NULL field must carry an SQL default (`constraints=[SQL("DEFAULT 0")]`) and is added
    with it in one ALTER TABLE. Without one, peewee would add the column as NULL, fill it and
    then rebuild the table on SQLite to make it NOT NULL; dropping the old table there
    cascades to the rows of other tables that reference it (an order's events, say).
    """
    existing = {c.name for c in db.get_columns(model._meta.table_name)}
    migrator = PostgresqlMigrator(db.obj) if is_postgres() else SqliteMigrator(db.obj)
    ops = []
    for name in field_names:
        field = model._meta.fields[name]
        if field.column_name in existing:
            continue
        if not field.null and not _has_sql_default(field):
            raise ValueError(f"{model.__name__}.{name} is NOT NULL: give it an SQL DEFAULT")
        ops.append(
            migrator.add_column(
                model._meta.table_name, field.column_name, field, allow_not_null=not field.null
            )
        )
    if ops:
        migrate(*ops)


def _has_sql_default(field) -> bool:
    return any("DEFAULT" in getattr(c, "sql", "").upper() for c in field.constraints or ())


def applied_versions() -> set[int]:
    if not db.table_exists("schema_migrations"):
        return set()
    return {m.version for m in SchemaMigration.select(SchemaMigration.version)}


def pending() -> list[str]:
    done = applied_versions()
    return [name for i, name in enumerate(MIGRATIONS, 1) if i not in done]


def run() -> list[str]:
    """Apply every pending migration; return the names applied."""
    applied = []
    opened = db.is_closed()
    if opened:
        db.connect()
    try:
        applied = _apply_pending()
    finally:
        if opened:
            db.close()
    return applied


def _apply_pending() -> list[str]:
    applied = []
    with db.atomic():
        lock_for_transaction(_PG_LOCK_KEY)
        db.create_tables([SchemaMigration], safe=True)
        done = applied_versions()
        for version, name in enumerate(MIGRATIONS, 1):
            if version in done:
                continue
            module = importlib.import_module(f"shop.migrations.{name}")
            module.up(db)
            SchemaMigration.create(version=version, name=name, applied_at=now())
            applied.append(name)
    return applied
