"""Offline anonymization reads every frame the way the streaming service does (issue 13).

``pmr anonymize``'s default (mode ``last``) must give, frame for frame, what the service
publishes for the same continuous track with its default policy and bone step: the same
start-up padding (the first frame repeated), per-window normalisation, read position
(the window's last frame) and bones. Checked against a :class:`WindowStore` driven the
way the service drives it (one window at a time, the torch backend) and against the
real service on loopback ZeroMQ.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from pmr_stream.anonymizer.window import WindowOptions, WindowPolicy, WindowStore
from pmr_stream.assets import DEFAULT_MODEL
from pmr_stream.offline import AnonymizeOptions, anonymize_track, default_window_fn
from pmr_stream.skeleton import T, median_bone_lengths, retarget_bones

needs_default = pytest.mark.skipif(
    not DEFAULT_MODEL.exists(), reason=f"default model {DEFAULT_MODEL} not built"
)
TOL_M = 1e-5  # metres: the engines' float error, far below any difference of read position


def _ntu_track() -> np.ndarray:
    from pmr_stream.formats.io import load_recording
    from tests.ntu_samples import ntu_file

    rec = load_recording(ntu_file("S001C001P001R001A001.skeleton"))  # 103 frames, one person
    m = rec.present[:, 0]
    assert m.all()
    return rec.joints[m, 0].astype(np.float32)


def _standin_track() -> np.ndarray:
    from pmr_stream.synth import generate_clip, make_performers

    return generate_clip(make_performers(8, 0)[3], "wave", 1, 1, seed=0).astype(np.float32)


TRACKS = {"ntu": _ntu_track, "standin": _standin_track}


def streamed(x: np.ndarray, backend: Any, policy: str, bones: bool) -> np.ndarray:
    """What the service publishes for the track ``x``: each frame pushed into a
    :class:`WindowStore`, its window run alone through ``backend``, resolved, flushed at the
    end of the stream, then the service's bone step (the dummy's median bones)."""
    st = WindowStore(WindowOptions(policy=WindowPolicy.parse(policy)))
    outs: dict[int, np.ndarray] = {}
    for t in range(len(x)):
        due, _ = st.push("cam", 0, t, x[t], t, t)
        assert due is not None
        for tag, o in st.resolve(due, backend.anonymize(due.window[None])[0]):
            outs[tag] = o
    for tag, o in st.drop(("cam", 0)):
        outs[tag] = o
    y = np.stack([outs[t] for t in range(len(x))])
    return retarget_bones(y, median_bones_of(backend)) if bones else y


def median_bones_of(backend: Any) -> np.ndarray:
    return median_bone_lengths(backend.source.dummy_window)


@pytest.fixture(scope="module")
def offline_fn() -> Any:
    fn, _ = default_window_fn()
    return fn


@pytest.fixture(scope="module")
def torch_backend() -> Any:
    from pmr_stream.backends import get_backend

    return get_backend("torch", device="cpu")


@needs_default
@pytest.mark.parametrize("bones", [True, False], ids=["bones-dummy", "bones-model"])
@pytest.mark.parametrize("name", sorted(TRACKS))
def test_offline_default_equals_the_service_window_store(name: str, bones: bool, offline_fn: Any,
                                                         torch_backend: Any) -> None:  # fmt: skip
    x = TRACKS[name]()
    assert len(x) > T  # the start-up (first 74 frames) and the steady state
    lengths = tuple(float(v) for v in median_bone_lengths(offline_fn.source.dummy_window)) if bones else None
    offline = anonymize_track(
        x, offline_fn.anonymize, AnonymizeOptions(bone_lengths=lengths, bones="dummy" if bones else "model")
    )  # the default mode
    stream = streamed(x, torch_backend, "last", bones)
    diff = np.abs(offline - stream).max(axis=(1, 2))  # (N,) per frame, metres
    assert diff[: T - 1].max() < TOL_M, f"start-up frames differ by up to {diff[: T - 1].max():.3g} m"
    assert diff.max() < TOL_M, f"frame {int(diff.argmax())} differs by {diff.max():.3g} m"
    centre = anonymize_track(
        x,
        offline_fn.anonymize,
        AnonymizeOptions(mode="centre", bone_lengths=lengths, bones="dummy" if bones else "model"),
    )
    assert np.abs(centre - stream).max() > 100 * TOL_M  # the check can tell read positions apart


@needs_default
def test_offline_delay_mode_equals_the_service_delay_policy(offline_fn: Any, torch_backend: Any) -> None:
    x = _standin_track()
    offline = anonymize_track(
        x, offline_fn.anonymize, AnonymizeOptions(mode="delay:4", batch_size=7, bones="model")
    )
    stream = streamed(x, torch_backend, "delay:4", bones=False)
    np.testing.assert_allclose(
        offline, stream, atol=TOL_M
    )  # including the last 4 frames (end-of-stream flush)
    assert (
        np.abs(offline - anonymize_track(x, offline_fn, AnonymizeOptions(bones="model"))).max() > 100 * TOL_M
    )


def positional(w: np.ndarray) -> np.ndarray:
    """A stand-in network whose error depends only on the frame's position in the window."""
    return w + np.linspace(0.0, 0.1, T, dtype=np.float32)[None, :, None, None]


@pytest.mark.parametrize("policy", ["last", "delay:3"])
@pytest.mark.parametrize("n", [1, 40, 75, 160])
def test_policy_modes_read_like_the_window_store(policy: str, n: int) -> None:
    """Without a model: same numbers as the store, any length, any batch size; ``last`` reads
    the window's last position (its error), never the centre's."""
    rng = np.random.default_rng(n)
    x = (rng.normal(0, 0.3, (n, 25, 3)) + [0.0, 0.0, 3.0]).astype(np.float32)

    class Fn:
        source = None

        @staticmethod
        def anonymize(w: np.ndarray) -> np.ndarray:
            return positional(w)

    want = streamed(x, Fn, policy, bones=False)
    for batch in (1, 16, 256):
        got = anonymize_track(x, positional, AnonymizeOptions(mode=policy, batch_size=batch, bones="model"))
        np.testing.assert_allclose(got, want, atol=1e-6)
    if policy == "last":
        np.testing.assert_allclose(got - x, 0.1, atol=1e-5)  # the last position's error, every frame


def test_modes_and_their_errors() -> None:
    assert AnonymizeOptions().mode == "last" and AnonymizeOptions().policy == WindowPolicy(0)
    assert AnonymizeOptions(mode="delay:8").policy == WindowPolicy(8)
    assert AnonymizeOptions(mode="centre").policy is None and AnonymizeOptions(mode="blend").policy is None
    for bad in ("first", "delay:75", "delay:x", ""):
        with pytest.raises(ValueError, match="mode must be a window policy") as e:
            AnonymizeOptions(mode=bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="batch_size"):
        AnonymizeOptions(batch_size=0)


@needs_default
def test_offline_default_equals_the_real_service(offline_fn: Any, torch_backend: Any) -> None:
    """The real service (ZeroMQ on loopback, torch backend, default policy and bones) publishes
    the frames ``pmr anonymize`` writes for the same track, the start-up included."""
    from pmr_stream.anonymizer.options import ServiceOptions
    from pmr_stream.wire.schema import FrameMessage
    from pmr_stream.wire.sockets import Publisher
    from pmr_stream.wire.subscriber import Subscriber
    from tests.service.conftest import collect, end_msg, frame_msg, running_service, start_msg, wait_connected

    x = _standin_track()[:100]
    lengths = tuple(float(v) for v in median_bone_lengths(offline_fn.source.dummy_window))
    offline = anonymize_track(x, offline_fn.anonymize, AnonymizeOptions(bone_lengths=lengths))
    with Publisher("tcp://127.0.0.1:*") as raw:
        with running_service(raw.endpoint, torch_backend, ServiceOptions(report_s=0)) as svc, \
                Subscriber(svc.anon_endpoint, ["anon/"]) as sub:  # fmt: skip
            wait_connected(raw)  # the service subscribed to raw/ after it saw this anon/ subscriber
            raw.send(start_msg("cam1", 0))
            for i, j in enumerate(x):
                raw.send(frame_msg("cam1", i + 1, i, j))
                time.sleep(0.001)  # a live producer's pace, as the service meets it
            raw.send(end_msg("cam1", len(x) + 1, len(x)))
            got = collect(sub)
    frames = sorted((r.message for r in got if isinstance(r.message, FrameMessage)), key=lambda m: m.frame)
    assert [m.frame for m in frames] == list(range(len(x)))
    published = np.stack([m.joints for m in frames])
    diff = np.abs(published - offline).max(axis=(1, 2))
    assert diff.max() < TOL_M, f"frame {int(diff.argmax())} differs by {diff.max():.3g} m"
