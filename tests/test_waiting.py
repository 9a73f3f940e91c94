"""The tests' one way to wait: poll a condition, fail naming it."""

from __future__ import annotations

import pytest

from tests.waiting import wait_until


def test_returns_the_first_truthy_result() -> None:
    calls = iter([None, "", "ready"])
    assert wait_until(lambda: next(calls), timeout_s=10, interval_s=0) == "ready"


def test_a_timeout_names_what_was_awaited() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.05 s waiting for the moon"):
        wait_until(lambda: False, timeout_s=0.05, interval_s=0.01, what="the moon")
