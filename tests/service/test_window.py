"""Unit tests of the per-person ring buffers and the window policies."""

from __future__ import annotations

import numpy as np
import pytest

from pmr_stream.anonymizer.window import WindowOptions, WindowPolicy, WindowStore
from pmr_stream.skeleton import Joint, T


def pose(t: float) -> np.ndarray:
    j = np.arange(25, dtype=np.float32)
    return np.stack([j / 10 + t, -j / 10, 2 + j / 10 + 0.01 * t], axis=1).astype(np.float32)


def identity(w: np.ndarray) -> np.ndarray:
    return w.copy()


def test_policy_parse() -> None:
    assert WindowPolicy.parse("last").delay == 0
    assert WindowPolicy.parse("delay:4").name == "delay:4"
    np.testing.assert_allclose(WindowPolicy(3).weights().sum(), 1.0, rtol=1e-6)
    for bad in ("first", "delay:-1", "delay:75", "delay:x"):
        with pytest.raises(ValueError):
            WindowPolicy.parse(bad)
    with pytest.raises(ValueError):
        WindowOptions(max_gap=80)


def test_padding_and_normalisation() -> None:
    st = WindowStore()
    due, flushed = st.push("s", 0, 0, pose(0), "tag0", 0)
    assert due is not None and not flushed
    assert due.window.shape == (T, 25, 3)
    # padded by repeating the first frame; SpineMid of the first frame at the origin
    np.testing.assert_allclose(
        due.window, np.repeat((pose(0) - pose(0)[Joint.SPINE_MID])[None], T, axis=0), atol=1e-6
    )
    due2, _ = st.push("s", 0, 1, pose(1), "tag1", 1)
    np.testing.assert_allclose(due2.window[-1] + due2.offset, pose(1), atol=1e-5)
    np.testing.assert_allclose(due2.window[-2] + due2.offset, pose(0), atol=1e-5)


def test_last_policy_returns_the_input_through_identity() -> None:
    st = WindowStore()
    for t in range(100):
        due, _ = st.push("s", 0, t, pose(t), t, t)
        [(tag, out)] = st.resolve(due, identity(due.window))
        assert tag == t
        np.testing.assert_allclose(out, pose(t), atol=1e-4)


def test_delay_policy_outputs_n_frames_later_in_order() -> None:
    st = WindowStore(WindowOptions(policy=WindowPolicy(3)))
    got = []
    for t in range(20):
        due, _ = st.push("s", 0, t, pose(t), t, t)
        for tag, out in st.resolve(due, identity(due.window)):
            got.append(tag)
            np.testing.assert_allclose(out, pose(tag), atol=1e-4)  # identity: blending is exact
        assert got == list(range(max(0, t - 2)))
    rest = st.drop(("s", 0))
    assert [tag for tag, _ in rest] == [17, 18, 19]
    for tag, out in rest:
        np.testing.assert_allclose(out, pose(tag), atol=1e-4)


def test_failed_window_fails_every_frame_it_covers() -> None:
    st = WindowStore(WindowOptions(policy=WindowPolicy(2)))
    outs = {}
    for t in range(10):
        due, _ = st.push("s", 0, t, pose(t), t, t)
        for tag, out in st.resolve(due, None if t == 5 else identity(due.window)):
            outs[tag] = out
    # the window ending at frame 5 holds frames 3, 4, 5 of the blend
    assert [t for t in range(8) if outs[t] is None] == [3, 4, 5]
    st2 = WindowStore()
    due, _ = st2.push("s", 0, 0, pose(0), 0, 0)
    assert st2.resolve(due, None) == [(0, None)]


def test_gaps_out_of_date_reset_and_eviction() -> None:
    st = WindowStore(WindowOptions(max_gap=5, idle_s=1.0))
    st.push("s", 0, 0, pose(0), 0, 0)
    due, _ = st.push("s", 0, 4, pose(4), 4, 10)  # 3 missing frames interpolated
    assert st.counters.interpolated == 3
    np.testing.assert_allclose(due.window[-2] + due.offset, pose(3), atol=1e-5)
    np.testing.assert_allclose(due.window[-3] + due.offset, pose(2), atol=1e-5)
    assert st.push("s", 0, 4, pose(4), 4, 11)[0] is None
    assert st.push("s", 0, 2, pose(2), 2, 11)[0] is None
    assert st.counters.out_of_date == 2
    due, _ = st.push("s", 0, 40, pose(40), 40, 12)  # long gap: reset, padded again
    assert st.counters.resets == 1
    np.testing.assert_allclose(due.window[0] + due.offset, pose(40), atol=1e-5)
    st.push("s", 1, 0, pose(0), "p1", int(2e9))
    assert st.idle(int(2e9)) == [("s", 0)]
    st.drop(("s", 0))
    assert list(st.tracks) == [("s", 1)]


def test_persons_are_kept_apart() -> None:
    st = WindowStore()
    for t in range(10):
        st.push("s", 0, t, pose(t), None, t)
        due, _ = st.push("s", 1, t, pose(-t) + 5, None, t)
    np.testing.assert_allclose(due.window[-1] + due.offset, pose(-9) + 5, atol=1e-5)
    assert set(st.tracks) == {("s", 0), ("s", 1)}
