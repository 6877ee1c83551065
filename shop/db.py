"""The database handle every model binds to, and how it is opened.

One `DatabaseProxy` lets the same models run on SQLite (the default, one file in the instance)
or PostgreSQL (`SHOP_DATABASE_URL`). Connections come from a small pool and are held for one
request. Write transactions on SQLite begin IMMEDIATE so two writers queue on the file lock
instead of failing half-way with "database is locked" when a read lock cannot be upgraded.
"""

import fcntl
import os
import threading
from urllib.parse import parse_qs, unquote, urlparse

from peewee import DatabaseProxy, Model, _savepoint
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase


class _Proxy(DatabaseProxy):
    """peewee's proxy opens savepoints itself; hand them to the bound database's own kind."""

    def savepoint(self):
        return self.obj.savepoint()


db = _Proxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: a committed payment survives a power cut
    "busy_timeout": 15000,
    "foreign_keys": 1,
    "cache_size": -16000,
    # Savepoints (one per piece of a group commit, one per ledger posting) copy each page
    # they first touch into a statement journal, which spills to a new temp file past 64 KiB:
    # an open, ~25 writes and an unlink per API order. In memory they are plain copies.
    "temp_store": 2,
}


class _Savepoint(_savepoint):
    """peewee's savepoint, but released after a rollback too, under one fixed name.

    peewee leaves a rolled-back savepoint open (ROLLBACK TO keeps it) and names each one
    with a fresh uuid, which SQLite compiles anew every time. Released on both paths, the
    open savepoints always form a stack, so one name can serve every depth (both databases
    resolve a repeated name to the innermost), and an outer savepoint that rolls back after
    an inner one failed still goes back to its own start.
    """

    def __init__(self, database):
        super().__init__(database, "kashop_sp")

    def __exit__(self, exc_type, exc_val, exc_tb):
        if exc_type is None:
            return super().__exit__(exc_type, exc_val, exc_tb)
        self.rollback(begin=False)
        self.db.execute_sql(f"RELEASE SAVEPOINT {self.quoted_sid};")
        return None


class _StackedSavepoints:
    def savepoint(self):
        return _Savepoint(self)


class SqliteDatabase(_StackedSavepoints, PooledSqliteDatabase):
    """SQLite whose writers queue on a lock file before BEGIN IMMEDIATE.

    SQLite lets one writer in at a time; the others, in its busy handler, sleep and retry in
    steps growing to 100 ms, so under a flash sale the write lock mostly stands free while
    the next writer sleeps. An exclusive flock() on `<database>.writelock` is a queue the
    kernel wakes the moment the lock is released: BEGIN IMMEDIATE then finds the database
    free. Each thread has its own descriptor (flock does not exclude a process from itself),
    reopened after a fork so gunicorn workers never share one.
    """

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self._writer = threading.local()
        self._lock_path = None if database == ":memory:" else f"{database}.writelock"

    def _acquire(self):
        if self._lock_path is None:
            return
        local = self._writer
        if getattr(local, "pid", None) != os.getpid():
            local.fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            local.pid = os.getpid()
        fcntl.flock(local.fd, fcntl.LOCK_EX)
        local.held = True

    def _release(self):
        local = self._writer
        if getattr(local, "held", False):
            local.held = False
            fcntl.flock(local.fd, fcntl.LOCK_UN)

    def begin(self, lock_type=None):
        self._acquire()
        try:
            super().begin(lock_type)
        except BaseException:
            self._release()
            raise

    def commit(self):
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._release()


class PostgresqlDatabase(_StackedSavepoints, PooledPostgresqlDatabase):
    pass


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


def open_database(url: str):
    """Build (but do not connect) the database for a `sqlite:///path` or `postgresql://` URL."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ":memory:"
        return SqliteDatabase(
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
        return PostgresqlDatabase(
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
    return isinstance(db.obj, PostgresqlDatabase)


def lock_for_transaction(key: int) -> None:
    """Wait until no other transaction holds the lock `key`, and hold it to this one's end:
    for work that must run one at a time across processes. On PostgreSQL an advisory lock;
    on SQLite a write transaction holds the whole database already, so there is nothing to
    take."""
    if is_postgres():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (key,))


_PG_STATEMENTS: dict[str, str] = {}


def _placeholders(sql: str) -> str:
    """A `?`-placeholder statement in the bound database's own style (psycopg2 takes %s)."""
    if not is_postgres():
        return sql
    return _PG_STATEMENTS.get(sql) or _PG_STATEMENTS.setdefault(sql, sql.replace("?", "%s"))


def run(sql: str, params=()):
    """Execute a hand-written statement written with `?` placeholders, on either database.

    The hot paths (paying, reserving, posting to the ledger) use a handful of these instead of
    peewee queries: building a query costs more than the database takes to run it, and these
    statements run inside the write lock, where every microsecond is every buyer's wait.
    """
    return db.execute_sql(_placeholders(sql), params)


def raw_one(model, sql: str, *params):
    """The first `model` row of a hand-written SELECT (fields converted as usual), or None.

    The columns are matched to fields once per statement: peewee's `Model.raw` resolves them
    again for every query, which cost more than the read itself on the API's hot path."""
    cursor = run(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    cache = local_cache("raw_one")
    converters = cache.get((model, sql))
    if converters is None:
        by_column = {f.column_name: f for f in model._meta.sorted_fields}
        converters = [
            (by_column[column[0]].name, by_column[column[0]].python_value)
            for column in cursor.description
        ]
        cache[(model, sql)] = converters
    instance = model(__no_default__=True)
    for (name, convert), value in zip(converters, row, strict=True):
        if value is not None:
            value = convert(value)
        instance.__data__[name] = value
    return instance


def commit_callbacks() -> list:
    """This thread's pending `db.after_commit` callbacks (peewee keeps them per connection
    state): the group commit drops those of work whose savepoint rolled back."""
    return db.obj._state.commit_callbacks


def local_cache(name: str) -> dict:
    """A dict that lives as long as the bound database: for rows that never change once
    written (ledger accounts), so a test binding a fresh database starts with an empty one."""
    return db.obj.__dict__.setdefault(f"_kashop_{name}", {})


def insert(model, *, unless_exists: tuple[str, ...] = (), **values):
    """INSERT one row through a cached statement and return the saved instance.

    Fields left out take their defaults; values go through each field's `db_value` (so an
    EncryptedField is encrypted as with `Model.create`). For the wide rows written while the
    write lock is held (orders), this skips building the statement on every call.

    With `unless_exists` (the fields of a unique index), a row that would clash with one
    already there is not written and None comes back: no IntegrityError, so no savepoint is
    needed around the insert, and on PostgreSQL a clash with a row being committed
    concurrently waits for it, as the unique index would.
    """
    meta = model._meta
    row = {}
    for field in meta.sorted_fields:
        if field is meta.primary_key:
            continue
        if field.name in values:
            value = values[field.name]
        elif field.default is not None:
            value = field.default() if callable(field.default) else field.default
        else:
            value = None
        row[field.name] = value
    columns = tuple(row)
    cache = local_cache("insert_sql")
    sql = cache.get((model, columns, unless_exists))
    if sql is None:
        names = ", ".join(f'"{meta.fields[name].column_name}"' for name in columns)
        marks = ", ".join("?" for _ in columns)
        sql = f'INSERT INTO "{meta.table_name}" ({names}) VALUES ({marks})'
        if unless_exists:
            target = ", ".join(f'"{meta.fields[name].column_name}"' for name in unless_exists)
            sql += f" ON CONFLICT ({target}) DO NOTHING"
        sql += ' RETURNING "id"'
        cache[(model, columns, unless_exists)] = sql
    params = [meta.fields[name].db_value(value) for name, value in row.items()]
    found = run(sql, params).fetchone()
    if found is None:
        return None
    return model(id=found[0], **row)
