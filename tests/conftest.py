"""Shared fixtures: a migrated database per test, on SQLite or (for `pg` tests) PostgreSQL.

A test marked `pg` runs twice: on a SQLite file and on PostgreSQL in a schema of its own,
the latter only when SHOP_TEST_PG_URL is set (skipped otherwise).
"""

import os
import uuid

import pytest

from shop import db as shop_db
from shop import migrations

PG_URL = os.environ.get("SHOP_TEST_PG_URL")


def pytest_generate_tests(metafunc):
    if "db_url" in metafunc.fixturenames:
        backends = ["sqlite"]
        if metafunc.definition.get_closest_marker("pg"):
            backends.append("pg")
        metafunc.parametrize("db_backend", backends, indirect=False)


def _pg_url_with_schema(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}schema={schema}"


@pytest.fixture
def db_url(db_backend, tmp_path):
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.sqlite3'}"
        return
    if not PG_URL:
        pytest.skip("SHOP_TEST_PG_URL is not set")
    import psycopg2

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE SCHEMA {schema}")
    try:
        yield _pg_url_with_schema(schema)
    finally:
        admin.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture
def database(db_url):
    """A migrated, connected database bound to the models for the length of one test.

    The process's settings cache is emptied (as create_app does), or a setting changed by
    the previous test would be read here for a second or two."""
    from shop.settings import service as settings_service

    database = shop_db.bind(db_url)
    settings_service.invalidate()
    migrations.run()
    database.connect(reuse_if_open=True)
    yield database
    if not database.is_closed():
        database.close()
    database.close_all()


@pytest.fixture
def app(db_url, tmp_path, monkeypatch):
    """A shop app on a fresh instance folder and database (CSRF on, as in production)."""
    from shop import create_app

    monkeypatch.setenv("SHOP_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("SHOP_DATABASE_URL", db_url)
    monkeypatch.delenv("SHOP_SECRET_KEY", raising=False)
    monkeypatch.delenv("SHOP_MASTER_KEY", raising=False)
    monkeypatch.delenv("SHOP_SAFE_MODE", raising=False)
    # pages fresh on every request; tests/test_pagecache.py turns the guest cache on
    application = create_app({"TESTING": True, "PAGE_CACHE_SECONDS": 0})
    yield application
    shop_db.db.close_all()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def owner(app):
    """The shop after setup: returns the owner's (email, password)."""
    from shop.setup.service import initialize

    with app.app_context():
        initialize("Test Shop", "owner@example.com", "owner-pass-1", "en")
    return "owner@example.com", "owner-pass-1"


CSRF_RE = __import__("re").compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(client, url: str) -> str:
    page = client.get(url)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


def submit(client, url: str, data: dict, form_url: str | None = None, **kwargs):
    """Post a form the way a browser does: fetch the page first for its CSRF token."""
    token = csrf_from(client, form_url or url)
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


def login(client, email: str, password: str):
    return submit(client, "/login", {"email": email, "password": password})
