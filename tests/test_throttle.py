"""The attempt counter behind the login and order look-up limits: counted before the work it
guards, one number per attempt however many arrive at once, on SQLite and PostgreSQL."""

import threading
from datetime import timedelta

import pytest

from shop.clock import now
from shop.db import db
from shop.security import throttle
from shop.security.throttle import Throttle

WINDOW = timedelta(minutes=15)


def count(key: str) -> int:
    return Throttle.get_by_id(key).count


@pytest.mark.pg
def test_parallel_attempts_each_get_a_number_of_their_own(database):
    """24 threads (each its own connection) count at the same moment: exactly the limit of
    them may go ahead, and none is lost."""
    threads, limit = 24, 10
    together = threading.Barrier(threads)
    allowed = []

    def try_once():
        together.wait(timeout=30)
        try:
            allowed.append(throttle.attempt("k", limit, WINDOW).allowed)
        finally:
            db.close()

    workers = [threading.Thread(target=try_once) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(allowed) == [False] * (threads - limit) + [True] * limit
    assert count("k") == threads


@pytest.mark.pg
def test_a_new_window_starts_over(database, monkeypatch):
    assert [throttle.attempt("k", 2, WINDOW).allowed for _ in range(3)] == [True, True, False]
    later = now() + WINDOW
    monkeypatch.setattr(throttle, "now", lambda: later)
    assert throttle.attempt("k", 2, WINDOW).allowed
    assert Throttle.get_by_id("k").window_start == later and count("k") == 1


@pytest.mark.pg
def test_forgiving_takes_back_one_attempt_of_its_own_window_only(database, monkeypatch):
    first = throttle.attempt("k", 2, WINDOW)
    throttle.attempt("k", 2, WINDOW)
    throttle.forgive(first)
    assert count("k") == 1
    later = now() + WINDOW
    monkeypatch.setattr(throttle, "now", lambda: later)
    throttle.attempt("k", 2, WINDOW)  # opens a new window, which owes `first` nothing
    throttle.forgive(first)
    assert count("k") == 1
