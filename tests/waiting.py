"""Waiting in tests: poll a condition until it holds, never sleep a fixed time and hope.

A fixed sleep is either too short on a slow, shared machine (the test fails for no
reason) or too long everywhere else (the suite crawls). :func:`wait_until` returns
as soon as the condition holds and fails, naming what it waited for, only after a
generous timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    timeout_s: float = 20.0,
    interval_s: float = 0.01,
    what: str = "the condition",
) -> T:
    """Call ``condition`` every ``interval_s`` seconds until it returns something truthy; return that.

    Args:
        condition: called with no arguments; a truthy result ends the wait. It may itself
            block briefly (a ``recv`` with a timeout), which then paces the polling.
        timeout_s: the most seconds to wait before giving up (generous: the machine is slow).
        interval_s: seconds between calls.
        what: what is waited for, in words, for the failure message.

    Raises:
        AssertionError: naming ``what`` and ``timeout_s`` when the condition still does not
            hold at the deadline (it is checked once more at the deadline).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)
