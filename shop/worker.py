"""Background work on huey: SQLite-backed in the instance by default, Redis when
SHOP_REDIS_URL is set. Tasks run inside an app context of their own process."""

import functools
import logging
import os

from huey import RedisHuey, SqliteHuey

from shop.config import instance_path

log = logging.getLogger(__name__)


def _make_huey():
    redis_url = os.environ.get("SHOP_REDIS_URL")
    if redis_url:
        return RedisHuey("kashop", url=redis_url)
    path = instance_path()
    path.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("kashop", filename=str(path / "tasks.sqlite3"))


huey = _make_huey()
_app = None


def in_app_context(fn):
    """Run a task inside the shop's app context with a database connection of its own."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _app
        if _app is None:
            from shop import create_app

            _app = create_app()
        from shop.db import db

        with _app.app_context(), db.connection_context():
            return fn(*args, **kwargs)

    return wrapper


def run_consumer(workers: int = 2) -> None:
    """Run the huey consumer in this process until it is told to stop (SIGTERM/SIGINT)."""
    from huey.consumer import Consumer

    from shop import tasks  # registers the periodic tasks

    tasks.resume_paid()  # queued once now: deliver what a crash left paid, before the first tick
    Consumer(huey, workers=workers, worker_type="thread", periodic=True).run()
