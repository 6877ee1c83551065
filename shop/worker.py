"""Background work on huey: SQLite-backed in the instance by default, Redis when
SHOP_REDIS_URL is set. Tasks run inside an app context of their own process."""

import functools
import os
import signal
import threading
import time

from huey import RedisHuey, SqliteHuey

from shop.config import instance_path


def _make_huey():
    redis_url = os.environ.get("SHOP_REDIS_URL")
    if redis_url:
        return RedisHuey("kashop", url=redis_url)
    path = instance_path()
    path.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("kashop", filename=str(path / "tasks.sqlite3"))


huey = _make_huey()
_app = None
_app_lock = threading.Lock()


def _task_app():
    """The app tasks run in: the one the consumer was started with, else built once.

    Building a second app in a process that already has one would re-bind the shared
    database proxy under tasks running in other threads.
    """
    global _app
    with _app_lock:
        if _app is None:
            from shop import create_app

            _app = create_app()
        return _app


def in_app_context(fn):
    """Run a task inside the shop's app context with a database connection of its own."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from shop.db import db

        with _task_app().app_context(), db.connection_context():
            return fn(*args, **kwargs)

    return wrapper


def _stop_when_orphaned(parent: int, interval: float = 0.5) -> None:
    """Send ourselves SIGINT (a graceful stop) once `parent` is no longer our parent.

    Polling works wherever Python does and needs nothing from the parent, which may have been
    killed without a chance to stop us."""

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_consumer(app, workers: int = 2, exit_with: int | None = None) -> None:
    """Run the huey consumer in this process until it is told to stop: SIGINT finishes the
    running tasks first, SIGTERM stops at once, SIGHUP restarts. With `exit_with`, it also
    stops when that parent process ends."""
    global _app
    from huey.consumer import Consumer

    from shop import tasks  # registers the periodic tasks

    _app = app
    # queued once now, before the first tick: deliver what a crash left paid, send its refunds
    tasks.resume_paid()
    tasks.send_refunds()
    consumer = Consumer(huey, workers=workers, worker_type="thread", periodic=True)
    if exit_with is not None:
        _stop_when_orphaned(exit_with)
    consumer.run()
