"""Kashop bench: a flash sale through the signed API and the product page, against the real
server (gunicorn, SQLite by default), with the correctness checks a flash sale must pass.

    python bench/run.py                      # SQLite, defaults below
    python bench/run.py --database postgresql://postgres@127.0.0.1:5432/test
    python bench/run.py --keys 5000 --buyers 64 --page-seconds 15

Prints one line per figure and exits 1 when a check fails (a key sold twice, a wrong
balance, an error answer, an audit problem). The product page is loaded with `wrk` when it is
installed (`apt-get install wrk`), else with a Python client (which then competes with the
server for the same cores, so its figure is lower).
"""

import argparse
import hashlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRICE = 100  # fen per key
WALLET = 1_000_000  # fen per buyer: never the limit


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=3000, help="card keys on sale")
    p.add_argument("--buyers", type=int, default=48, help="concurrent API buyers")
    p.add_argument("--workers", type=int, default=None, help="gunicorn workers")
    p.add_argument(
        "--threads", type=int, default=None, help="threads per gunicorn worker (app.py's default)"
    )
    p.add_argument("--page-seconds", type=int, default=10, help="product page load duration")
    p.add_argument("--database", default=None, help="SHOP_DATABASE_URL (default: SQLite)")
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(instance: Path, keys: int, buyers: int):
    """Create the shop in-process: owner, a card product with `keys` keys, funded buyers
    with API keys. Returns (product id, [(user id, key id, secret)])."""
    from shop import create_app
    from shop.accounts import service as accounts
    from shop.api import keys as api_keys
    from shop.catalog.models import Product
    from shop.inventory import service as inventory
    from shop.payments import service as payments
    from shop.setup.service import initialize

    app = create_app()
    with app.app_context():
        initialize("Bench Shop", "owner@example.com", "owner-pass-1", "en")
        product = Product.create(
            name="Flash Sale Card", kind="card", price=PRICE, cost=60, stock=0, max_qty=10
        )
        inventory.import_keys(product, [f"BENCH-{uuid.uuid4().hex}" for _ in range(keys)])
        people = []
        for i in range(buyers):
            user = accounts.register(f"buyer{i}@example.com", "buyer-pass-1")
            payments.credit_wallet(user.id, WALLET)
            key, secret = api_keys.create(user.id, label="bench")
            people.append((user.id, key.key_id, secret))
    from shop.db import db

    db.close_all()
    return product.id, people


def start_server(port: int, workers: int | None, threads: int | None, env: dict):
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--no-worker"]
    if workers:
        args += ["--workers", str(workers)]
    proc = subprocess.Popen(
        args,
        env={**env, "SHOP_THREADS": str(threads)} if threads else env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(proc.stderr.read().decode()) from None
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("the server did not start in 30 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def machine_gauge() -> float:
    """Milliseconds a fixed piece of pure-Python work takes here (best of five).

    This machine's speed drifts by up to a factor of two within an hour, so a figure alone
    says little; two runs are comparable when their gauges are close."""
    payload = {"order_no": "K" * 26, "items": [{"secret": "S" * 32}] * 4, "amount": 100}
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for i in range(20_000):
            payload["amount"] = i
            hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def own_cpu() -> float:
    """CPU seconds this bench process (all its client threads) has used so far."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class LeanConnection:
    """A keep-alive HTTP/1.1 client that does only what the flash sale needs: send prepared
    bytes, read the status line, Content-Length and body. http.client parses every header
    through the email package, which cost ~0.8 ms of the two cores per order: the bench
    would have measured its own client as much as the shop."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length:")
        )
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, body

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def order_request(port: int, key_id: str, secret: str, body: bytes) -> bytes:
    """One signed POST /api/v1/orders, as bytes: a fresh nonce and Idempotency-Key each."""
    from shop.api.client import signed_headers

    headers = signed_headers(key_id, secret, "POST", "/api/v1/orders", body)
    headers["Idempotency-Key"] = uuid.uuid4().hex
    headers["Content-Type"] = "application/json"
    headers["Content-Length"] = str(len(body))
    headers["Host"] = f"127.0.0.1:{port}"
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST /api/v1/orders HTTP/1.1\r\n{lines}\r\n".encode() + body


def flash_sale(port: int, product_id: int, people, keys: int) -> dict:
    """Every buyer orders one key at a time until the shop answers sold out."""
    from shop.api.client import encode

    results = {"created": [], "sold_out": 0, "errors": [], "latencies": []}
    lock = threading.Lock()
    start = threading.Barrier(len(people) + 1)

    def buyer(key_id: str, secret: str):
        conn = LeanConnection(port)
        body = encode({"product_id": product_id, "quantity": 1})
        start.wait()
        while True:
            request = order_request(port, key_id, secret, body)
            t = time.perf_counter()
            try:
                status, payload = conn.exchange(request)
            except (OSError, ValueError, StopIteration) as exc:
                with lock:
                    results["errors"].append(f"connection: {exc!r}")
                conn.close()
                conn = LeanConnection(port)
                continue
            elapsed = time.perf_counter() - t
            with lock:
                results["latencies"].append(elapsed)
                if status == 201:
                    results["created"].append(json.loads(payload))
                elif status == 409 and b"sold_out" in payload:
                    results["sold_out"] += 1
                else:
                    results["errors"].append(f"{status} {payload[:200]!r}")
            if status == 409:
                break
        conn.close()

    threads = [threading.Thread(target=buyer, args=(k, s)) for _, k, s in people]
    for t in threads:
        t.start()
    start.wait()
    cpu0 = own_cpu()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    results["seconds"] = time.perf_counter() - t0
    results["client_cpu"] = own_cpu() - cpu0
    return results


def load_page(port: int, path: str, seconds: int) -> dict:
    url = f"http://127.0.0.1:{port}{path}"
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
        p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return {
            "tool": "wrk",
            "rps": rps,
            "p50": p50,
            "p99": p99,
            "bad": int(non2xx.group(1)) if non2xx else 0,
        }
    return _python_load(port, path, seconds)


def _python_load(port: int, path: str, seconds: int) -> dict:
    counts, bad, lat = [0], [0], []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            t = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            with lock:
                counts[0] += 1
                lat.append(time.perf_counter() - t)
                bad[0] += response.status != 200

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "tool": "python",
        "rps": counts[0] / seconds,
        "p50": f"{percentile(lat, 0.5) * 1000:.1f}ms",
        "p99": f"{percentile(lat, 0.99) * 1000:.1f}ms",
        "bad": bad[0],
    }


def check(product_id: int, people, sale: dict, keys: int) -> list[str]:
    """The flash sale's invariants, read from the database the server wrote."""
    from shop import create_app, invariants, ledger
    from shop.catalog.models import Product
    from shop.inventory.models import CardKey

    problems = []
    secrets = [item["secret"] for order in sale["created"] for item in order["items"]]
    if len(sale["created"]) != keys:
        problems.append(f"{len(sale['created'])} orders delivered for {keys} keys")
    if len(set(secrets)) != len(secrets) or len(secrets) != keys:
        problems.append(f"{len(secrets)} secrets, {len(set(secrets))} distinct, {keys} keys")
    if any(order["status"] != "delivered" for order in sale["created"]):
        problems.append("an order answered 201 without being delivered")
    if sale["sold_out"] != len(people):
        problems.append(f"{sale['sold_out']} sold-out answers for {len(people)} buyers")
    if sale["errors"]:
        problems.append(f"{len(sale['errors'])} error answers, first: {sale['errors'][0]}")
    app = create_app()
    with app.app_context():
        spent = sum(
            WALLET - ledger.balance(ledger.user_account(uid, "wallet")) for uid, _, _ in people
        )
        if spent != keys * PRICE:
            problems.append(f"wallets paid {spent} fen for {keys * PRICE} fen of keys")
        if Product.get_by_id(product_id).stock != 0:
            problems.append("stock is not 0 after the sale")
        sold = CardKey.select().where(CardKey.state == "sold").count()
        if sold != keys:
            problems.append(f"{sold} keys sold, {keys} expected")
        for name, found in invariants.run_all().items():
            if found:
                problems.append(f"audit {name}: {found[:3]}")
    return problems


def main() -> int:
    args = parse_args()
    instance = Path(tempfile.mkdtemp(prefix="kashop-bench-"))
    env = {**os.environ, "SHOP_INSTANCE": str(instance)}
    if args.database:
        env["SHOP_DATABASE_URL"] = args.database
    os.environ.update(env)
    print(f"preparing: {args.keys} keys, {args.buyers} buyers, instance {instance}")
    product_id, people = prepare(instance, args.keys, args.buyers)
    gauge = machine_gauge()
    port = free_port()
    server = start_server(port, args.workers, args.threads, env)
    try:
        # a second of warm-up first: each process compiles its templates on its first page,
        # which is not what a shop that has been up for a while serves
        load_page(port, f"/p/{product_id}", 1)
        page = load_page(port, f"/p/{product_id}", args.page_seconds)
        sale = flash_sale(port, product_id, people, args.keys)
        home = load_page(port, "/", max(3, args.page_seconds // 2))
    finally:
        stop_server(server)
    lat = sale["latencies"]
    orders = len(sale["created"])
    print(f"database: {'PostgreSQL' if args.database else 'SQLite (WAL, synchronous=FULL)'}")
    print(f"machine gauge: {gauge:.0f} ms for a fixed Python workload (lower is faster)")
    print(
        f"product page ({page['tool']}): {page['rps']:.0f} requests/s, p50 {page['p50']}, "
        f"p99 {page['p99']}, non-2xx {page['bad']}"
    )
    print(
        f"home page ({home['tool']}): {home['rps']:.0f} requests/s, p50 {home['p50']}, "
        f"p99 {home['p99']}"
    )
    print(
        f"flash sale: {orders} paid+delivered orders in {sale['seconds']:.2f} s = "
        f"{orders / sale['seconds']:.0f} orders/s; {sale['sold_out']} sold-out answers"
    )
    if lat:
        print(
            f"order latency: p50 {statistics.median(lat) * 1000:.1f} ms, "
            f"p99 {percentile(lat, 0.99) * 1000:.1f} ms; the bench's own client used "
            f"{sale['client_cpu'] / max(orders, 1) * 1000:.2f} ms of CPU per order"
        )
    problems = check(product_id, people, sale, args.keys)
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    print("checks: " + ("all passed" if not problems else f"{len(problems)} failed"))
    shutil.rmtree(instance, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
