"""Crash points, for tests that kill a real process in the middle of an operation.

With SHOP_CRASH_AT=<name> in its environment, a process dies at once (SIGKILL: no cleanup, no
rollback handler, no flushed buffer) when it reaches `point(<name>)`, which is how the tests
prove that a crash between two transactions loses nothing and delivers nothing twice.
Without the variable a point costs one comparison.
"""

import os
import signal

_CRASH_AT = os.environ.get("SHOP_CRASH_AT", "")


def point(name: str) -> None:
    if name == _CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)
