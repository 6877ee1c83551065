"""Group commit: the short write transactions of many threads committed as one.

SQLite lets one writer in at a time and, with synchronous=FULL, every COMMIT waits for the
disk (an fsync of the WAL, ~0.5 ms here: half the time an API order held the write lock).
PostgreSQL runs writers side by side, but every API order updates the same escrow account
and product rows, so its orders queued on those row locks one at a time all the same, each
holding them across a dozen round trips.

When several threads of one process want to write at once, the first becomes the leader: it
opens one transaction, runs each thread's work in a savepoint of its own, commits once and
hands every thread its own result or exception. Work that fails rolls back only its
savepoint; a failing COMMIT fails them all and writes nothing of any. Every caller still
returns only after its change is on disk, so nothing answered as done can be lost.

The work runs in the leader's thread, on its connection, inside a copy of the caller's
context (contextvars: Flask's request, app context and `g`), so the code inside cannot tell
the difference. Its after-commit callbacks run after the shared COMMIT, in that context too;
those of work that failed are dropped with its savepoint.

On PostgreSQL the leaders of the server's processes take turns on an advisory lock taken
first in their transaction, as SQLite's write lock makes them do, instead of meeting halfway
through on a row lock. Inside a transaction already open, `run` is a plain `db.atomic()` block.
"""

import contextvars
import functools
import logging
import threading

from shop.db import commit_callbacks, db, local_cache, lock_for_transaction

log = logging.getLogger(__name__)

GROUP_LOCK = 0x6B617368_4743  # "kash" "GC": one group at a time in its transaction (PostgreSQL)
MAX_GROUP = 32  # pieces per COMMIT: bounds how long the first caller of a group waits


class _Piece:
    """One caller's work, waiting to be run by a leader (or to lead)."""

    __slots__ = ("work", "context", "ready", "lead", "result", "error")

    def __init__(self, work):
        self.work = work
        self.context = contextvars.copy_context()
        self.ready = threading.Event()
        self.lead = False
        self.result = None
        self.error: BaseException | None = RuntimeError("the group commit stopped before this ran")


class _Group:
    """The process's queue of pieces. Invariant: `waiting` is not empty only while a leader
    is running, so a piece that arrives either leads or will be run or handed the lead."""

    def __init__(self):
        self.lock = threading.Lock()
        self.waiting: list[_Piece] = []
        self.leading = False
        self.idle = threading.Event()  # clear while a leader holds SQLite's write lock
        self.idle.set()


def run(work):
    """Run `work()` in a write transaction and return what it returns, or raise what it
    raised; when it returns, its change is committed."""
    if db.in_transaction():
        with db.atomic():
            return work()
    group = _group()
    piece = _Piece(work)
    with group.lock:
        group.waiting.append(piece)
        if not group.leading:
            group.leading = piece.lead = True
    if not piece.lead:
        piece.ready.wait()  # run by a leader, or handed the lead
    if piece.lead:
        _lead(group)
    if piece.error is not None:
        raise piece.error
    return piece.result


def _group() -> _Group:
    cache = local_cache("group_commit")
    group = cache.get("group")
    # built only when missing: a Lock and an Event per call cost every API request a few
    # microseconds of the GIL the leader is waiting for
    return group if group is not None else cache.setdefault("group", _Group())


def wait_for_writer(limit: float = 0.05) -> None:
    """Let this process's leader finish its transaction before starting Python work.

    sqlite3 hands the GIL back at every statement, and the leader then waits for it behind
    every busy thread of its process, while the whole shop waits for its write lock: under a
    flash sale the lock was held twice as long as its work took. A request that starts while
    its process holds the lock waits (without the GIL) until the COMMIT, at most `limit`
    seconds; the other processes use the time. The same holds for psycopg2 on PostgreSQL."""
    _group().idle.wait(limit)


def _lead(group: _Group) -> None:
    with group.lock:
        batch, group.waiting = group.waiting[:MAX_GROUP], group.waiting[MAX_GROUP:]
    try:
        _commit(group, batch)
    finally:
        with group.lock:
            if group.waiting:  # arrived meanwhile: the first of them leads the next group
                successor = group.waiting[0]
                successor.lead = True
                successor.ready.set()
            else:
                group.leading = False
        for piece in batch:
            piece.lead = False
            piece.ready.set()


def _commit(group: _Group, batch: list[_Piece]) -> None:
    callbacks = commit_callbacks()
    try:
        with db.atomic():
            lock_for_transaction(GROUP_LOCK)
            group.idle.clear()  # the write lock is ours from here to the COMMIT
            for piece in batch:
                mark = len(callbacks)
                try:
                    with db.atomic():  # a savepoint: this piece fails alone
                        piece.result = piece.context.run(piece.work)
                    piece.error = None
                except Exception as exc:
                    piece.error = exc
                    del callbacks[mark:]
                else:
                    callbacks[mark:] = [
                        functools.partial(_after_commit, piece.context, callback)
                        for callback in callbacks[mark:]
                    ]
    except BaseException as exc:  # the COMMIT failed: none of the batch was written
        failure = exc if isinstance(exc, Exception) else RuntimeError("the commit was cut off")
        for piece in batch:
            piece.result, piece.error = None, piece.error or failure
        if failure is not exc:
            raise
    finally:
        group.idle.set()


def _after_commit(context: contextvars.Context, callback) -> None:
    """A piece's after-commit callback, in its caller's context. The data is committed by
    now: a callback that raises is logged, never reported as the piece failing."""
    try:
        context.run(callback)
    except Exception:
        log.exception("after-commit callback %r failed", callback)
