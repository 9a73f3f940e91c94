"""The one percentile helper: its key convention, empty samples, rounding and the inputs it takes."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from pmr_stream.stats import percentile_key, percentile_values, percentiles


def test_keys_follow_name_p_q() -> None:
    assert percentile_key("latency_ms", 50) == "latency_ms_p50"
    assert percentile_key("latency_ms", 99.9) == "latency_ms_p99.9"
    assert list(percentiles([1.0, 2.0], "x_ms", (50, 90, 99))) == ["x_ms_p50", "x_ms_p90", "x_ms_p99"]
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile_key("x", 101)


def test_values_are_numpys_linear_percentiles() -> None:
    a = np.random.default_rng(0).exponential(3.0, 1001)
    got = percentile_values(a, (50, 90, 99))
    assert got == [float(x) for x in np.percentile(a, [50, 90, 99])]  # bit-identical, not approximately
    assert percentile_values([1, 2, 3, 4, 5], (50, 75)) == [3.0, 4.0]
    assert percentiles([1, 2, 3, 4], "t", (25, 50)) == {"t_p25": 1.75, "t_p50": 2.5}


def test_without_samples_every_figure_is_none() -> None:
    assert percentile_values([]) == [None, None]
    assert percentile_values(np.zeros(0), (50, 90, 99)) == [None, None, None]
    assert percentiles(deque(), "q_ms", mean=True, maximum=True) == {
        "q_ms_mean": None, "q_ms_p50": None, "q_ms_p99": None, "q_ms_max": None,
    }  # fmt: skip


def test_rounding_mean_and_maximum() -> None:
    s = [0.123456, 0.2, 0.987654]
    assert percentiles(s, "x", (50,), ndigits=2, mean=True, maximum=True) == {
        "x_mean": 0.44, "x_p50": 0.2, "x_max": 0.99,
    }  # fmt: skip
    assert list(percentiles(s, "x", mean=True, maximum=True)) == ["x_mean", "x_p50", "x_p99", "x_max"]
    assert percentiles(s, "x", maximum=True)["x_max"] == 0.987654  # full precision by default


@pytest.mark.parametrize(
    "samples",
    [[3, 1, 2], deque([3.0, 1.0, 2.0]), (v for v in (3.0, 1.0, 2.0)), np.array([[1.0, 2.0], [3.0, 2.0]])],
)
def test_takes_any_iterable_of_numbers(samples: object) -> None:
    assert percentile_values(samples, (0, 50, 100)) == [1.0, 2.0, 3.0]  # type: ignore[arg-type]
