"""`python app.py` as an owner runs it: a real gunicorn with a background worker beside it.

Each test starts the server as a subprocess on a fresh instance folder and a free port,
waits (bounded) until it answers, looks at the process tree through /proc, stops it with a
signal and checks that nothing is left running. Cleanup ends every process a test started,
by pid, even when the test fails half-way.
"""

import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from processes import ROOT, Started, alive, all_pids, cmdline, shop_env, wait_for

from shop.config import load_config
from shop.orders.views import LOOKUP_LIMIT

APP = str(ROOT / "app.py")


@pytest.fixture
def start(tmp_path):
    started: list[Started] = []

    def run(*args: str, cwd=ROOT, **env: str) -> Started:
        log = tmp_path / f"server-{len(started)}.log"
        process = Started([APP, *args], cwd=cwd, env=shop_env(**env), log=log)
        started.append(process)
        return process

    yield run
    for process in started:
        process.cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(server: Started, url: str, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"server exited with {server.proc.returncode}:\n{server.log()}")
        try:
            return requests.get(url, allow_redirects=False, timeout=2)
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    pytest.fail(f"server did not answer {url} within {timeout}s:\n{server.log()}")


def is_web_worker(pid: int) -> bool:
    """A gunicorn worker: a fork of the master, so it has the master's command line."""
    return cmdline(pid)[1:2] == [APP]


def is_background_worker(pid: int) -> bool:
    args = cmdline(pid)
    return args[1:3] == ["-m", "flask"] and args[5:7] == ["shop", "worker"]


def process_tree(server: Started) -> tuple[list[int], list[int]]:
    pids = server.descendants()
    return [p for p in pids if is_web_worker(p)], [p for p in pids if is_background_worker(p)]


def running_tree(server: Started, web_workers: int) -> tuple[list[int], int]:
    """Wait until the server has its web workers and one background worker; return their
    pids."""

    def ready():
        web, background = process_tree(server)
        return (web, background) if len(web) >= web_workers and background else None

    tree = wait_for(ready, 30)
    assert tree and len(tree[1]) == 1, server.log()
    assert len(tree[0]) == web_workers, {p: cmdline(p) for p in server.descendants()}
    return tree[0], tree[1][0]


def assert_all_gone(pids: list[int], timeout: float = 15) -> None:
    wait_for(lambda: not any(alive(p) for p in pids), timeout)
    left = [p for p in pids if alive(p)]
    assert not left, {p: cmdline(p) for p in left}


def test_serves_with_gunicorn_and_a_worker_from_any_directory(tmp_path, start):
    """Started from another directory with a relative SHOP_INSTANCE, both processes use the
    same instance folder, relative to where the owner typed the command."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    server = start(
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        cwd=elsewhere,
        SHOP_INSTANCE="inst",
    )
    first = wait_until_up(server, f"http://127.0.0.1:{port}/")
    assert first.status_code == 302 and first.headers["Location"].endswith("/setup")
    assert first.headers["Server"] == "gunicorn"
    assert requests.get(f"http://127.0.0.1:{port}/setup", timeout=5).status_code == 200

    web, worker = running_tree(server, web_workers=2)
    assert wait_for(lambda: "Huey consumer started" in server.log(), 30), server.log()

    instance = elsewhere / "inst"
    assert (instance / "tasks.sqlite3").is_file()  # the worker's queue, in the same folder
    assert not (ROOT / "inst").exists()
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    for name in ("secret_key", "master_key"):
        assert stat.S_IMODE((instance / name).stat().st_mode) == 0o600, name
    control = instance / "gunicorn.ctl"  # per shop; off where the path is too long for one
    if len(str(control)) < 100:
        assert wait_for(control.is_socket, 10), server.log()
    else:
        assert "Control socket" not in server.log()

    assert server.stop(signal.SIGTERM) == 0
    assert_all_gone([*web, worker])
    assert "Consumer exiting." in server.log()


def test_address_from_environment_and_secrets_from_environment(tmp_path, start):
    port = free_port()
    instance = tmp_path / "inst"
    server = start(
        "--workers",
        "2",
        SHOP_INSTANCE=str(instance),
        SHOP_HOST="127.0.0.1",
        SHOP_PORT=str(port),
        SHOP_SECRET_KEY=secrets.token_hex(32),
        SHOP_MASTER_KEY=secrets.token_hex(32),
    )
    assert wait_until_up(server, f"http://127.0.0.1:{port}/setup").status_code == 200
    web, worker = running_tree(server, web_workers=2)

    assert (instance / "shop.sqlite3").is_file()
    assert not (instance / "secret_key").exists()
    assert not (instance / "master_key").exists()

    assert server.stop(signal.SIGINT) == 0
    assert_all_gone([*web, worker])


def test_worker_does_not_outlive_a_killed_server(start, tmp_path):
    port = free_port()
    server = start("--port", str(port), "--workers", "1", SHOP_INSTANCE=str(tmp_path / "inst"))
    wait_until_up(server, f"http://127.0.0.1:{port}/")
    _, worker = running_tree(server, web_workers=1)

    server.stop(signal.SIGKILL)
    assert_all_gone([worker])


def test_dev_mode_serves_with_the_reloader_and_one_worker(start, tmp_path):
    port = free_port()
    server = start("--dev", "--port", str(port), SHOP_INSTANCE=str(tmp_path / "inst"))
    first = wait_until_up(server, f"http://127.0.0.1:{port}/")
    assert first.status_code == 302 and first.headers["Server"].startswith("Werkzeug")
    assert wait_for(lambda: "Huey consumer started" in server.log(), 30), server.log()

    pids = server.descendants()
    workers = [p for p in pids if is_background_worker(p)]
    reloaded = [p for p in pids if is_web_worker(p)]  # the reloader's serving child
    assert len(workers) == 1 and len(reloaded) == 1, {p: cmdline(p) for p in pids}

    assert server.stop(signal.SIGTERM) == 0
    assert_all_gone(pids)


def test_a_busy_port_fails_fast_and_starts_no_worker(start, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = start("--port", str(port), "--workers", "1", SHOP_INSTANCE=str(tmp_path / "i"))
        assert server.proc.wait(timeout=60) != 0
    assert "Connection in use" in server.log()
    assert "Huey consumer started" not in server.log()
    started_by_it = ["--exit-with", str(server.pid)]
    assert not [pid for pid in all_pids() if cmdline(pid)[-2:] == started_by_it]


@pytest.mark.parametrize(
    ("cpus", "cpu_max", "workers"),
    [
        (2, None, 2),
        (1, None, 2),
        (8, None, 8),
        (64, None, 12),
        (64, "200000 100000", 2),
        (64, "350000 100000", 4),
        (4, "max 100000", 4),
    ],
)
def test_default_web_workers_follow_the_cpus_this_process_may_use(
    monkeypatch, tmp_path, cpus, cpu_max, workers
):
    import app as entry

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    monkeypatch.delenv("SHOP_WORKERS", raising=False)
    cgroup = tmp_path / "cpu.max"
    if cpu_max:
        cgroup.write_text(cpu_max + "\n")
    monkeypatch.setattr(entry, "CGROUP_CPU_MAX", cgroup)
    assert entry.parse_args([]).workers == workers
    monkeypatch.setenv("SHOP_WORKERS", "3")
    assert entry.parse_args([]).workers == 3
    assert entry.parse_args(["--workers", "1"]).workers == 1


@pytest.mark.parametrize(
    ("workers", "threads"), [(1, 48), (2, 24), (3, 16), (8, 6), (12, 4), (20, 4)]
)
def test_default_threads_keep_the_database_connections_bounded(workers, threads):
    """48 threads in all (one PostgreSQL connection each, well inside its default 100),
    at least 4 per process."""
    import app as entry

    assert entry.default_threads(workers) == threads


def test_processes_starting_at_once_agree_on_the_generated_secrets(tmp_path):
    """Web server, worker and CLI may all start on a fresh instance at the same moment."""
    instance = tmp_path / "inst"
    go = tmp_path / "go"
    script = (
        "import os, time\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.001)\n"
        "from shop.config import load_config\n"
        "c = load_config()\n"
        "print(c.secret_key, c.master_key.hex())\n"
    )
    env = shop_env(SHOP_INSTANCE=str(instance))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    try:
        time.sleep(0.5)  # let every process import and wait at the line
        go.touch()
        outputs = {p.communicate(timeout=60)[0] for p in procs}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs)
    assert len(outputs) == 1 and outputs.pop().strip()
    assert sorted(os.listdir(instance)) == ["master_key", "secret_key"]  # no temporary files
    for name in ("master_key", "secret_key"):
        assert stat.S_IMODE((instance / name).stat().st_mode) == 0o600


def test_an_empty_secret_file_is_refused_not_used(tmp_path, monkeypatch):
    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "secret_key").write_text("")
    for name in ("SHOP_SECRET_KEY", "SHOP_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHOP_INSTANCE", str(instance))
    with pytest.raises(RuntimeError, match="is empty; delete it"):
        load_config()


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.mark.pg
def test_parallel_wrong_lookups_get_no_more_answers_than_the_limit(db_url, tmp_path, start):
    """40 wrong order look-ups from one address at the same moment, spread over two gunicorn
    workers: only the first LOOKUP_LIMIT are answered, every other one is refused (429),
    however many arrive while the first are still checking their password."""
    env = {
        "SHOP_INSTANCE": str(tmp_path / "inst"),
        "SHOP_DATABASE_URL": db_url,
        "SHOP_MASTER_KEY": secrets.token_hex(32),
        "SHOP_SECRET_KEY": secrets.token_hex(32),
    }
    init = ["-m", "flask", "--app", "app", "shop", "init", "--json"]
    init += ["--admin-email", "owner@example.com", "--admin-password", "owner-pass-1"]
    done = subprocess.run(
        [sys.executable, *init], cwd=ROOT, env=shop_env(**env), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    port = free_port()
    server = start("--port", str(port), "--workers", "2", "--no-worker", **env)
    url = f"http://127.0.0.1:{port}/lookup"
    assert wait_until_up(server, url).status_code == 200
    guesses = 40
    together = threading.Barrier(guesses)

    def guess(n: int) -> int:
        browser = requests.Session()  # its own session and form token, fetched beforehand
        token = CSRF_RE.search(browser.get(url, timeout=30).text).group(1)
        wrong = {"order_no": f"K{n:020d}", "contact": "a@example.com", "query_password": "x"}
        together.wait(timeout=60)
        return browser.post(url, data={"csrf_token": token, **wrong}, timeout=60).status_code

    with ThreadPoolExecutor(guesses) as pool:
        answers = Counter(pool.map(guess, range(guesses)))
    assert answers == {400: LOOKUP_LIMIT, 429: guesses - LOOKUP_LIMIT}, server.log()
