"""Looking at real processes through /proc (psutil is not a dependency), for the tests that
start the server and the worker as an owner would."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOP_ENV = (
    "SHOP_INSTANCE",
    "SHOP_SECRET_KEY",
    "SHOP_MASTER_KEY",
    "SHOP_DATABASE_URL",
    "SHOP_REDIS_URL",
    "SHOP_SAFE_MODE",
    "SHOP_HOST",
    "SHOP_PORT",
    "SHOP_WORKERS",
)


def shop_env(**extra: str) -> dict:
    """The test runner's environment without any SHOP_* setting that would leak in."""
    env = {k: v for k, v in os.environ.items() if k not in SHOP_ENV}
    env.update(extra)
    return env


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except (FileNotFoundError, ProcessLookupError):
        return []


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def children(pid: int) -> list[int]:
    """Live processes whose parent is `pid`."""
    found = []
    for child in all_pids():
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(child)
    return found


def wait_for(predicate, timeout: float, interval: float = 0.1):
    """Poll until `predicate()` is truthy and return its value, or None after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Started:
    """A process started by a test, with its output in a log file and every process it
    starts remembered, so cleanup can end them all by pid even if the test failed."""

    def __init__(self, args: list[str], cwd: Path, env: dict, log: Path):
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.pid = self.proc.pid
        self.seen: dict[int, list[str]] = {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[int]:
        """Every live process below this one; remembered for cleanup."""
        found, todo = [], [self.pid]
        while todo:
            for child in children(todo.pop()):
                found.append(child)
                todo.append(child)
                self.seen.setdefault(child, cmdline(child))
        return found

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.descendants()
            self.proc.kill()
            self.proc.wait(timeout=10)
        for pid, args in self.seen.items():
            if alive(pid) and cmdline(pid) == args:  # the same process, not a reused pid
                os.kill(pid, signal.SIGKILL)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()
