"""Percentile summaries: one helper and one key convention for every statistic we report.

Every summary (the anonymizer's stats line, ``/stats.json`` and ``/metrics``, the producer's
report, the subscriber's and the demo's ``latency.json``, the benchmarks) names a percentile
``{name}_p{q}``: ``latency_ms_p50``, ``latency_ms_p99``, ``engine_ms_per_batch_p99``; the mean
and the largest sample, when asked for, are ``{name}_mean`` and ``{name}_max``. Without
samples every figure is ``None`` (JSON ``null``), never NaN. Percentiles are numpy's
default (linear interpolation between the closest ranks).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

#: The percentiles a summary reports unless told otherwise.
DEFAULT_QS: tuple[float, ...] = (50, 99)


def percentile_key(name: str, q: float) -> str:
    """The key of percentile ``q`` (0-100) of ``name``: ``("latency_ms", 99) -> "latency_ms_p99"``
    (``99.9 -> "latency_ms_p99.9"``)."""
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is between 0 and 100, got {q}")
    return f"{name}_p{q:g}"


def _as_array(samples: Iterable[float] | np.ndarray) -> np.ndarray:
    if isinstance(samples, np.ndarray):
        return np.asarray(samples, dtype=np.float64).reshape(-1)
    return np.fromiter(samples, dtype=np.float64)


def _rounded(x: float, ndigits: int | None) -> float:
    return float(x) if ndigits is None else round(float(x), ndigits)


def percentile_values(
    samples: Iterable[float] | np.ndarray, qs: Sequence[float] = DEFAULT_QS, *, ndigits: int | None = None
) -> list[float | None]:
    """Percentiles ``qs`` (0-100) of ``samples``, in the order of ``qs``.

    Args:
        samples: any iterable of numbers (a list, a deque, a generator, an array of any shape:
            flattened); the unit is the caller's and stays the same.
        qs: the percentiles, 0-100.
        ndigits: round each figure to this many decimals (``None``: full float precision).

    Returns:
        ``len(qs)`` floats, or ``len(qs)`` ``None`` when there are no samples.
    """
    a = _as_array(samples)
    if a.size == 0:
        return [None] * len(qs)
    return [_rounded(x, ndigits) for x in np.percentile(a, list(qs))]


def percentiles(
    samples: Iterable[float] | np.ndarray,
    name: str,
    qs: Sequence[float] = DEFAULT_QS,
    *,
    ndigits: int | None = None,
    mean: bool = False,
    maximum: bool = False,
) -> dict[str, float | None]:
    """A JSON-able summary of ``samples`` under the one key convention.

    ``percentiles(ms, "latency_ms")`` -> ``{"latency_ms_p50": ..., "latency_ms_p99": ...}``;
    ``mean=True`` adds ``latency_ms_mean`` first, ``maximum=True`` adds ``latency_ms_max`` last.
    Every value is ``None`` when there are no samples; ``ndigits`` rounds every value.
    See :func:`percentile_values` for ``samples`` and ``qs``.
    """
    a = _as_array(samples)
    out: dict[str, float | None] = {}
    if mean:
        out[f"{name}_mean"] = _rounded(a.mean(), ndigits) if a.size else None
    out.update(
        zip((percentile_key(name, q) for q in qs), percentile_values(a, qs, ndigits=ndigits), strict=True)
    )
    if maximum:
        out[f"{name}_max"] = _rounded(a.max(), ndigits) if a.size else None
    return out


__all__ = ["DEFAULT_QS", "percentile_key", "percentile_values", "percentiles"]
