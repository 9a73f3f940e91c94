"""One-Euro filter: less jitter on still joints, little lag on fast ones, restarts after gaps."""

from __future__ import annotations

import numpy as np
import pytest

from pmr_stream.capture.smoothing import OneEuroFilter, OneEuroOptions

FPS = 30.0


def _run(f: OneEuroFilter, xs: np.ndarray) -> np.ndarray:
    return np.stack([f.filter(x, i / FPS) for i, x in enumerate(xs)])


def test_still_skeleton_jitter_is_reduced() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(-1, 1, (25, 3))
    noisy = truth + rng.normal(0, 0.01, (300, 25, 3))  # 1 cm jitter
    out = _run(OneEuroFilter(), noisy)
    assert out.shape == (300, 25, 3) and out.dtype == np.float32
    raw_err = np.abs(noisy[60:] - truth).mean()
    smooth_err = np.abs(out[60:] - truth).mean()
    assert smooth_err < raw_err / 2.5


def test_fast_motion_lags_less_with_beta() -> None:
    t = np.arange(90) / FPS
    x = np.zeros((90, 25, 3))
    x[:, :, 0] = 2.0 * t[:, None]  # every joint moves at 2 m/s along x
    lag_adaptive = np.abs(_run(OneEuroFilter(), x)[-1] - x[-1]).max()
    lag_fixed = np.abs(_run(OneEuroFilter(OneEuroOptions(beta=0.0)), x)[-1] - x[-1]).max()
    assert lag_adaptive < 0.03  # under 3 cm behind
    assert lag_fixed > 5 * lag_adaptive


def test_joints_are_filtered_independently_by_their_speed() -> None:
    x = np.zeros((60, 25, 3))
    x[:, 7, 1] = np.arange(60) / FPS * 3.0  # only the left hand moves, 3 m/s up
    rng = np.random.default_rng(1)
    noisy = x + rng.normal(0, 0.005, x.shape)
    out = _run(OneEuroFilter(), noisy)
    assert np.abs(out[-1, 7] - x[-1, 7]).max() < 0.05  # the hand keeps up
    assert (
        np.abs(out[30:, 0] - x[30:, 0]).mean() < np.abs(noisy[30:, 0] - x[30:, 0]).mean() / 2
    )  # the rest is smoothed


def test_gaps_and_reset_restart_the_filter() -> None:
    f = OneEuroFilter(OneEuroOptions(max_gap_s=0.5))
    a, b = np.zeros((25, 3)), np.ones((25, 3))
    f.filter(a, 0.0)
    assert not np.allclose(f.filter(b, 1 / FPS), b)  # smoothed towards a
    np.testing.assert_array_equal(f.filter(a, 2.0), a)  # 2 s later: a fresh start
    f.reset()
    np.testing.assert_array_equal(f.filter(b, 2.0 + 1 / FPS), b)
    np.testing.assert_array_equal(f.filter(a, 2.0 + 1 / FPS), b)  # time did not advance: previous output


@pytest.mark.parametrize(
    "kw", [{"min_cutoff": 0.0}, {"beta": -1.0}, {"d_cutoff": float("nan")}, {"max_gap_s": 0}]
)
def test_bad_options_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        OneEuroOptions(**kw)


def test_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        OneEuroFilter().filter(np.zeros((25, 2)), 0.0)
