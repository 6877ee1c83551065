"""The background worker: its jobs do what they say, and `flask --app app shop worker` really
runs a queued task through the huey consumer and stops cleanly on a signal."""

import json
import signal
import sqlite3
import subprocess
import sys
from datetime import timedelta

from processes import ROOT, Started, shop_env, wait_for

from shop.clock import now
from shop.security.throttle import Throttle


def test_prune_throttles_forgets_only_old_counters(app, monkeypatch):
    from shop import tasks, worker

    monkeypatch.setattr(worker, "_app", app)
    with app.app_context():
        Throttle.create(key="old", count=3, window_start=now() - timedelta(days=2))
        Throttle.create(key="fresh", count=1, window_start=now() - timedelta(hours=1))
    tasks.prune_throttles.call_local()
    with app.app_context():
        assert [t.key for t in Throttle.select()] == ["fresh"]


def test_consumer_runs_a_queued_task_and_stops_on_sigint(tmp_path):
    instance = tmp_path / "inst"
    env = shop_env(SHOP_INSTANCE=str(instance))
    consumer = Started(
        ["-m", "flask", "--app", "app", "shop", "worker", "--json"],
        cwd=ROOT,
        env=env,
        log=tmp_path / "worker.log",
    )
    try:
        assert wait_for(lambda: "Huey consumer started" in consumer.log(), 60), consumer.log()
        stamp = "%Y-%m-%d %H:%M:%S.%f"
        db = sqlite3.connect(instance / "shop.sqlite3")
        with db:
            db.executemany(
                "INSERT INTO throttle (key, count, window_start) VALUES (?, 1, ?)",
                [
                    ("old", (now() - timedelta(days=2)).strftime(stamp)),
                    ("fresh", now().strftime(stamp)),
                ],
            )

        enqueue = subprocess.run(
            [sys.executable, "-c", "from shop.tasks import prune_throttles as t; print(t().id)"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        task_id = enqueue.stdout.strip()

        def keys():
            return [k for (k,) in db.execute("SELECT key FROM throttle ORDER BY key")]

        assert wait_for(lambda: keys() == ["fresh"], 30), (keys(), consumer.log())
        assert f"Executing shop.tasks.prune_throttles: {task_id}" in consumer.log()
        db.close()

        assert consumer.stop(signal.SIGINT, timeout=30) == 0, consumer.log()
        assert json.loads(consumer.proc.stdout.read()) == {"stopped": True}
        assert "Consumer exiting." in consumer.log()
    finally:
        consumer.cleanup()
