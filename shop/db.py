"""The database handle every model binds to, and how it is opened.

One `DatabaseProxy` lets the same models run on SQLite (the default, one file in the instance)
or PostgreSQL (`SHOP_DATABASE_URL`). Connections come from a small pool and are held for one
request. Write transactions on SQLite begin IMMEDIATE so two writers queue on the file lock
instead of failing half-way with "database is locked" when a read lock cannot be upgraded.
"""

from urllib.parse import parse_qs, unquote, urlparse

from peewee import DatabaseProxy, Model
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

db = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: a committed payment survives a power cut
    "busy_timeout": 15000,
    "foreign_keys": 1,
    "cache_size": -16000,
}


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


def open_database(url: str):
    """Build (but do not connect) the database for a `sqlite:///path` or `postgresql://` URL."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ":memory:"
        return PooledSqliteDatabase(
            path,
            pragmas=SQLITE_PRAGMAS,
            lock_type="IMMEDIATE",
            timeout=15,
            max_connections=64,
            stale_timeout=300,
            check_same_thread=False,
        )
    if parsed.scheme in ("postgres", "postgresql"):
        options = parse_qs(parsed.query)
        extra = {}
        if "schema" in options:  # a shared PostgreSQL database: keep the shop in one schema
            extra["options"] = f"-c search_path={options['schema'][0]}"
        return PooledPostgresqlDatabase(
            unquote(parsed.path.lstrip("/")),
            user=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            host=parsed.hostname,
            port=parsed.port or 5432,
            max_connections=32,
            stale_timeout=300,
            **extra,
        )
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")


def bind(url: str):
    """Point the shared proxy at the database named by `url` and return it."""
    database = open_database(url)
    db.initialize(database)
    return database


def is_postgres() -> bool:
    return isinstance(db.obj, PooledPostgresqlDatabase)
