"""The measured frame arrival rate: whether a due window may wait for others to join its batch.

The service waits up to ``max_wait_ms`` for a batch to fill only while the next frame is
expected sooner than that (:meth:`ArrivalRate.expected_gap_s`), so a single 30 fps stream
never waits while many streams fill their batches.
"""

from __future__ import annotations


class ArrivalRate:
    """Frames per second arriving, smoothed (exponential, updated every ``period_s``)."""

    def __init__(self, period_s: float = 0.1, weight: float = 0.3) -> None:
        self.period_ns = int(period_s * 1e9)
        self.weight = weight
        self.rate = 0.0
        self._count = 0
        self._t0: int | None = None

    def add(self, n: int, now_ns: int) -> None:
        """Count ``n`` frames received by monotonic time ``now_ns``."""
        if self._t0 is None:
            self._t0 = now_ns
        self._count += n
        dt = now_ns - self._t0
        if dt >= self.period_ns:
            self.rate += self.weight * (self._count * 1e9 / dt - self.rate)
            self._count, self._t0 = 0, now_ns

    def expected_gap_s(self) -> float:
        """Seconds until the next frame is expected (``inf`` before any rate is known)."""
        return 1.0 / self.rate if self.rate > 0 else float("inf")


__all__ = ["ArrivalRate"]
