"""The one way a test waits: poll a check until it holds, bounded in time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], *, within: float, what: str, every: float = 0.05) -> T:
    """Call ``check`` until it returns something truthy, and return that; fail with ``what``
    after ``within`` seconds. ``check`` may raise to give up at once (a process that exited)."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(every)
