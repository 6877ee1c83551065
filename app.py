"""Run the shop: `python app.py` serves web (gunicorn) and the background worker together.

    python app.py [--host 127.0.0.1] [--port 5000] [--workers N] [--dev]

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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Serve the Kashop storefront.")
    parser.add_argument("--host", default=os.environ.get("SHOP_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHOP_PORT", "5000")))
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SHOP_WORKERS", str((os.cpu_count() or 1) * 2 + 1))),
        help="gunicorn worker processes",
    )
    parser.add_argument("--no-worker", action="store_true", help="do not start the worker")
    parser.add_argument("--dev", action="store_true", help="Flask dev server with reloader")
    return parser.parse_args(argv)


def start_background_worker() -> subprocess.Popen:
    """The huey consumer in a child process; stopped when this process exits."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "shop", "worker"], cwd=ROOT
    )

    def stop():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    atexit.register(stop)
    return proc


def serve(args) -> None:
    from gunicorn.app.base import BaseApplication

    from shop.db import db

    class ShopServer(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            # threads keep HTTP connections alive; a sync worker pays a TCP handshake per
            # request and serves a quarter of the requests on the same cores
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", int(os.environ.get("SHOP_THREADS", "4")))
            self.cfg.set("preload_app", True)
            self.cfg.set("accesslog", os.environ.get("SHOP_ACCESS_LOG") or None)
            self.cfg.set("forwarded_allow_ips", os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))
            # connections opened by the master (migrations) must not be shared after fork
            self.cfg.set("pre_fork", lambda server, worker: db.close_all())

        def load(self):
            return create_app()

    ShopServer().run()


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.dev:
        if not args.no_worker and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
            start_background_worker()
        create_app().run(host=args.host, port=args.port, debug=True)
        return
    if not args.no_worker:
        start_background_worker()
    serve(args)


if __name__ == "__main__":
    main()
