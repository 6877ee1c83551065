"""The transaction machinery the services rely on: nested savepoints that really roll back,
and the group commit that shares one COMMIT between threads without mixing their fates."""

import threading
import time

import pytest
from peewee import CharField, IntegrityError

from shop import group_commit
from shop.db import BaseModel, db, run


class Note(BaseModel):
    text = CharField(unique=True)


@pytest.fixture
def notes(database):
    database.create_tables([Note])
    yield Note
    database.drop_tables([Note])


def texts():
    return sorted(n.text for n in Note.select())


class Refused(Exception):
    pass


@pytest.mark.pg
def test_an_outer_savepoint_rolls_back_after_an_inner_one_did(notes):
    """The inner failure is handled; then the outer block fails too: everything it wrote,
    before and after the inner savepoint, is gone, and the transaction's own row stays."""
    with db.atomic():
        Note.create(text="kept")
        with pytest.raises(Refused), db.atomic():
            Note.create(text="outer before")
            with pytest.raises(Refused), db.atomic():
                Note.create(text="inner")
                raise Refused
            Note.create(text="outer after")
            raise Refused
        Note.create(text="also kept")
    assert texts() == ["also kept", "kept"]


@pytest.mark.pg
def test_a_savepoint_larger_than_memory_pages_rolls_back_whole(notes):
    """A failing savepoint that rewrote far more than the statement journal's 64 KiB (kept
    in memory on SQLite) still restores every page it touched."""
    with db.atomic():
        for i in range(200):
            Note.create(text=f"kept {i:04d} " + "x" * 200)
        with pytest.raises(Refused), db.atomic():
            run('UPDATE "note" SET "text" = "text" || ?', ("!",))
            for i in range(2000):
                Note.create(text=f"gone {i:04d} " + "y" * 200)
            raise Refused
    assert texts() == [f"kept {i:04d} " + "x" * 200 for i in range(200)]


def test_sqlite_commits_are_durable(database):
    """WAL with synchronous=FULL: a COMMIT returns only once it is on disk, so a payment
    answered as taken survives a power cut."""
    if database.__class__.__name__ != "SqliteDatabase":
        pytest.skip("SQLite only")
    assert run("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert run("PRAGMA synchronous").fetchone()[0] == 2


@pytest.mark.pg
def test_a_failed_savepoint_leaves_the_transaction_usable(notes):
    """On PostgreSQL a failed statement aborts the transaction until the savepoint is rolled
    back; after it, the same transaction writes and commits."""
    with db.atomic():
        Note.create(text="a")
        with pytest.raises(IntegrityError), db.atomic():
            Note.create(text="a")  # unique violation
        Note.create(text="b")
    assert texts() == ["a", "b"]


@pytest.mark.pg
def test_group_commit_runs_work_and_returns_its_result(notes):
    assert group_commit.run(lambda: Note.create(text="x").text) == "x"
    assert texts() == ["x"]


@pytest.mark.pg
def test_group_commit_inside_a_transaction_is_part_of_it(notes):
    with pytest.raises(Refused), db.atomic():
        group_commit.run(lambda: Note.create(text="x"))
        raise Refused
    assert texts() == []


@pytest.mark.pg
def test_concurrent_work_shares_commits_and_each_fails_alone(notes):
    """30 threads at once (within PostgreSQL's pool of 32): the odd ones fail after writing.
    Each caller gets its own outcome, only the even ones' rows exist, and their after-commit
    callbacks alone ran."""
    database = db.obj
    callbacks, outcomes = [], {}
    commits = []
    real_commit = database.commit

    def counting_commit():
        commits.append(1)
        return real_commit()

    database.commit = counting_commit
    start = threading.Barrier(30, timeout=30)

    def work(i):
        Note.create(text=f"n{i}")
        db.after_commit(lambda: callbacks.append(i))
        if i % 2:
            raise Refused(i)
        return i

    def caller(i):
        database.connect(reuse_if_open=True)
        start.wait()
        try:
            outcomes[i] = group_commit.run(lambda: work(i))
        except Refused as exc:
            outcomes[i] = exc
        finally:
            database.close()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    del database.commit
    for i in range(30):
        if i % 2:
            assert isinstance(outcomes[i], Refused) and outcomes[i].args == (i,)
        else:
            assert outcomes[i] == i
    assert texts() == sorted(f"n{i}" for i in range(0, 30, 2))
    assert sorted(callbacks) == list(range(0, 30, 2))
    assert len(commits) < 30  # some commits were shared


@pytest.mark.pg
def test_a_failed_commit_fails_every_piece_of_its_group(notes, monkeypatch):
    """When the COMMIT itself fails, nothing of the group is written and no caller is told
    its work is done."""
    database = db.obj
    monkeypatch.setattr(database, "commit", lambda: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        group_commit.run(lambda: Note.create(text="lost"))
    monkeypatch.undo()
    assert texts() == []
    run('INSERT INTO "note" ("text") VALUES (?)', ("after",))
    assert texts() == ["after"]


@pytest.mark.pg
def test_requests_of_the_writing_process_wait_for_its_commit(notes):
    """While a leader holds the write lock, a request starting in its process waits for the
    COMMIT (so the leader has the GIL to itself), and not at all when nobody writes."""
    started = time.monotonic()
    group_commit.wait_for_writer(limit=5)
    assert time.monotonic() - started < 1
    inside, release, waited = threading.Event(), threading.Event(), []

    def slow_write():
        Note.create(text="slow")
        inside.set()
        release.wait(5)

    def writer():
        db.obj.connect(reuse_if_open=True)
        group_commit.run(slow_write)
        db.obj.close()

    def request():
        group_commit.wait_for_writer(limit=5)
        waited.append(Note.select().count())  # the write is committed by now

    first = threading.Thread(target=writer)
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=request)
    second.start()
    second.join(0.3)
    assert second.is_alive()  # still waiting for the writer
    release.set()
    first.join(5)
    second.join(5)
    assert waited == [1]
