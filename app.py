"""Run the shop: `python app.py` serves web (gunicorn) and the background worker together.

    python app.py [--host 127.0.0.1] [--port 5000] [--workers N] [--dev] [--no-worker]

SHOP_HOST / SHOP_PORT set the address too. `--dev` runs Flask's reloading dev server instead.
`flask --app app shop ...` is the operator CLI; it finds `create_app` here.
"""

import argparse
import atexit
import os
import signal
import subprocess
import sys
from pathlib import Path

from shop import create_app

ROOT = Path(__file__).resolve().parent
MAX_WORKERS = 12
ALL_THREADS = 48  # a PostgreSQL connection each: well inside its default max_connections
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus() -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup v2 CPU quota.

    os.cpu_count() counts the host's CPUs, so in a container limited to two cores it would
    start a worker set sized for the whole machine.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus or 1)


def default_threads(workers: int) -> int:
    """Threads per process: ALL_THREADS shared out (24 each for 2 processes), at least 4."""
    return max(4, ALL_THREADS // workers)


def default_workers() -> int:
    """One process per CPU (at least 2, so one can serve while the other restarts), capped
    at 12, with `default_threads` each. Fewer, busier processes suit SQLite: the API
    orders that one process writes at the same time share one COMMIT (shop.group_commit),
    so the more of them a process holds, the fewer COMMITs. On two cores, 2 x 24 took
    about 1.3 times the orders/s of 2 x 8 and half again those of gunicorn's usual
    2 x CPUs + 1 processes of 4 threads, and served pages no slower (bench/run.py)."""
    return max(2, min(usable_cpus(), MAX_WORKERS))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Serve the Kashop storefront.")
    parser.add_argument(
        "--host",
        default=os.environ.get("SHOP_HOST", "127.0.0.1"),
        help="address to listen on (default: SHOP_HOST, else 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SHOP_PORT", "5000")),
        help="port to listen on (default: SHOP_PORT, else 5000)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SHOP_WORKERS", 0)) or default_workers(),
        help="gunicorn worker processes (default: SHOP_WORKERS, else one per CPU, 2 to 12)",
    )
    parser.add_argument("--no-worker", action="store_true", help="do not start the worker")
    parser.add_argument("--dev", action="store_true", help="Flask dev server with reloader")
    return parser.parse_args(argv)


def start_background_worker() -> subprocess.Popen:
    """The huey consumer in a child process; stopped when this process exits.

    The child runs in the caller's working directory with app.py named by its full path, so
    `python app.py` works from anywhere and a relative SHOP_INSTANCE means the same folder to
    both processes. It gets a session of its own: a Ctrl-C in the terminal reaches only the
    server, which then stops the worker once, gracefully; and it stops by itself if the
    server dies without a word (SIGKILL, a crash), so no orphan holds the queue.
    """
    owner = os.getpid()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", str(ROOT / "app.py"), "shop", "worker"]
        + ["--exit-with", str(owner)],
        start_new_session=True,
    )

    def stop():
        # gunicorn workers are forked from this process and inherit the atexit hook
        if os.getpid() != owner or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    atexit.register(stop)
    return proc


def serve(app, args) -> None:
    from gunicorn.app.base import BaseApplication

    from shop.db import db

    control_socket = Path(app.instance_path) / "gunicorn.ctl"

    class ShopServer(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            # threads keep HTTP connections alive; a sync worker pays a TCP handshake per
            # request and serves a quarter of the requests on the same cores
            self.cfg.set("worker_class", "gthread")
            threads = os.environ.get("SHOP_THREADS")
            self.cfg.set("threads", int(threads) if threads else default_threads(args.workers))
            self.cfg.set("preload_app", True)
            self.cfg.set("accesslog", os.environ.get("SHOP_ACCESS_LOG") or None)
            self.cfg.set("forwarded_allow_ips", os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))
            # one control socket per shop, not one per user account that two shops would fight
            # over; a Unix socket path is limited to about 100 bytes
            if len(str(control_socket)) < 100:
                self.cfg.set("control_socket", str(control_socket))
            else:
                self.cfg.set("control_socket_disable", True)
            # connections opened by the master (migrations) must not be shared after fork
            self.cfg.set("pre_fork", lambda server, worker: db.close_all())
            # the worker starts once the address is bound: a busy port leaves nothing behind
            if not args.no_worker:
                self.cfg.set("when_ready", lambda server: start_background_worker())

        def load(self):
            return app

    ShopServer().run()


def main(argv=None) -> None:
    args = parse_args(argv)
    # build the app (secrets, migrations) before the worker starts, so the two processes
    # never race to create the instance
    app = create_app()
    if not args.dev:
        serve(app, args)
        return
    # the reloader runs this module again in a child (WERKZEUG_RUN_MAIN); one worker only
    if not args.no_worker and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        start_background_worker()
    app.run(host=args.host, port=args.port, debug=True)


if __name__ == "__main__":
    main()
