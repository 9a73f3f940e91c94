"""Offline anonymization of whole recordings, any length, every person.

Each person's track is cut into 75-frame windows, each normalised the way the
network was trained (SpineMid of its first frame at the origin), anonymized and put
back where it was. By default (mode ``"last"``) every frame is read the way the
streaming service reads it with its default window policy: from the end of the window
that ends at it, the start-up padded by repeating the track's first frame, through the
same :class:`~pmr_stream.anonymizer.window.WindowStore` the service uses, so a file anonymized
offline holds exactly the frames the service publishes for the same track (``"delay:N"``
is the offline form of the service's ``delay:N`` policy). ``"centre"`` reads every frame
from the centre of its own window; ``"blend"`` uses fewer windows, ``stride`` frames
apart, blended with weights that fall to near zero at window borders (a Hann taper).
Short tracks are padded by repeating their end frames and trimmed back afterwards.

The network call is a ``WindowFn``: windows ``(B, 75, 25, 3)`` normalised ->
anonymized ``(B, 75, 25, 3)``: a backend (:mod:`pmr_stream.backends`, the same
interface the streaming service runs; :func:`default_window_fn` builds the shipped one), its
``anonymize`` method, or any function of that shape (the evaluation's baselines).

Bones: as ``pmr anonymize`` and the service, by default (``bones="dummy"``,
:data:`~pmr_stream.anonymizer.options.DEFAULT_BONES`) every output bone is set to the dummy's
length: ``bone_lengths`` if given, else the backend's dummy's. A plain function has no dummy:
give it ``bone_lengths`` or ``bones="model"`` (the network's output as it is).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pmr_stream.anonymizer.options import BONES, DEFAULT_BONES
from pmr_stream.anonymizer.window import POLICY_HELP, WindowOptions, WindowPolicy, WindowStore
from pmr_stream.backends.base import Backend
from pmr_stream.formats.recording import Recording
from pmr_stream.skeleton import (
    J,
    T,
    center_windows,
    check_clip,
    pad_to_length,
    retarget_bones,
    uncenter_windows,
    window_starts,
)
from pmr_stream.wire.privacy import file_metadata, fresh_person_order

log = logging.getLogger(__name__)

WindowFn = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
#: What the functions here take as the network: a :class:`Backend` or a ``WindowFn``.
Network = Backend | WindowFn


def blend_weights(length: int = T) -> npt.NDArray[np.float64]:
    """Per-frame weights of one window in the overlap-add: a Hann taper, never exactly 0."""
    n = np.arange(length)
    return 0.5 - 0.5 * np.cos(2 * np.pi * (n + 0.5) / length) + 1e-3


#: Offline modes that are not a window policy (``last`` and ``delay:N`` are, see :mod:`pmr_stream.anonymizer.window`).
OFFLINE_MODES: Final[tuple[str, ...]] = ("centre", "blend")
#: What ``AnonymizeOptions.mode`` / ``pmr anonymize --mode`` accept.
MODE_HELP: Final[str] = f"a window policy ({POLICY_HELP}), 'centre' or 'blend'"


@dataclass(frozen=True)
class AnonymizeOptions:
    """How a track becomes windows.

    ``mode="last"`` (default): what the streaming service publishes with its default window
    policy, frame for frame: frame ``t`` is the last frame of the window ``t - 74 .. t``
    (before frame 74 the window is padded by repeating the track's first frame), each
    window normalised by the SpineMid of its first frame. Offline and streaming output of
    the same track are then the same (up to the engine's float error).
    ``mode="delay:N"`` (``N`` in 1..74): the service's ``delay:N`` policy: frame ``t`` is the
    weighted mean of frame ``t`` in the windows ending at ``t .. t + N`` (weights ``1 .. N+1``;
    at the track's end, over the windows there are).
    ``mode="centre"``: one window per frame, centred on it (the track's ends repeated as
    padding); each output frame is the centre frame of its own window. The network's error
    depends on the frame's position in the window, and the centre is where it is smallest;
    no streaming policy can read there without 37 frames (1.2 s) of delay.
    ``mode="blend"``: windows ``stride`` frames apart blended with a Hann taper
    (75 = no overlap; 25 = each frame in 3 windows); fewer network calls, more jitter.
    ``bones``: ``"dummy"`` (default, as ``pmr anonymize --bones`` and the service): every output
    bone is set to the dummy's length by forward kinematics, directions kept, after the
    policy's blending; the lengths are ``bone_lengths`` if given, else the backend's dummy's
    (the network given as a :class:`Backend` or its ``anonymize``). ``"model"``: the network's
    output as it is.
    ``bone_lengths``: ``(24,)`` metres (e.g. :func:`~pmr_stream.skeleton.median_bone_lengths` of
    the dummy), for ``bones="dummy"``; ``None``: the backend's dummy's.
    """

    mode: str = "last"
    stride: int = 25
    batch_size: int = 256
    bone_lengths: tuple[float, ...] | None = None
    bones: str = DEFAULT_BONES

    def __post_init__(self) -> None:
        if self.mode not in OFFLINE_MODES:
            try:
                WindowPolicy.parse(str(self.mode))
            except ValueError:
                raise ValueError(f"mode must be {MODE_HELP}, got {self.mode!r}") from None
        if not 1 <= self.stride <= T:
            raise ValueError(f"stride must be in 1..{T}, got {self.stride}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.bone_lengths is not None and len(self.bone_lengths) != J - 1:
            raise ValueError(f"bone_lengths must hold {J - 1} lengths, got {len(self.bone_lengths)}")
        if self.bones not in BONES:
            raise ValueError(f"bones must be one of {', '.join(BONES)}, got {self.bones!r}")
        if self.bones == "model" and self.bone_lengths is not None:
            raise ValueError("bone_lengths are for bones='dummy'; bones='model' keeps the network's bones")

    def lengths_for(self, network: Network) -> tuple[float, ...] | None:
        """The ``(24,)`` bone lengths (metres) the output is set to with ``network``, or None (no bone step)."""
        if self.bones == "model":
            return None
        if self.bone_lengths is not None:
            return self.bone_lengths
        owner = network if isinstance(network, Backend) else getattr(network, "__self__", None)
        if isinstance(owner, Backend):
            return tuple(float(v) for v in owner.source.dummy_bone_lengths())
        raise ValueError(
            "bones='dummy' (the default) needs the dummy's bone lengths: pass a backend (e.g. from "
            "default_window_fn), bone_lengths=..., or bones='model' for the network's output as it is"
        )

    @property
    def policy(self) -> WindowPolicy | None:
        """The streaming window policy this mode reads like, or None (``centre``, ``blend``)."""
        return None if self.mode in OFFLINE_MODES else WindowPolicy.parse(self.mode)


@dataclass
class TrackPlan:
    """One track's windows and how their results become the track.

    ``windows`` ``(W, 75, 25, 3)`` float32, normalised (the network's input, in the order the
    single-track path sends them); :meth:`finish` takes the network's output for them,
    ``(W, 75, 25, 3)``, and returns the anonymized track ``(N, 25, 3)`` metres, in the scene.
    Planning several tracks and sending their windows in one engine call (a whole dataset)
    gives the same frames as :func:`anonymize_track` of each (up to the engine's float error
    for other batch sizes).
    """

    windows: npt.NDArray[np.float32]
    _finish: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
    frames: int

    def finish(self, results: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """The anonymized track ``(N, 25, 3)`` from the windows' results ``(W, 75, 25, 3)``."""
        res = np.asarray(results, dtype=np.float32)
        if res.shape != self.windows.shape:
            raise ValueError(f"results must have shape {self.windows.shape}, got {res.shape}")
        return self._finish(res)


def plan_track(joints: npt.ArrayLike, options: AnonymizeOptions | None = None) -> TrackPlan:
    """The windows of one person's continuous track ``(N, 25, 3)`` metres (see :class:`TrackPlan`)."""
    opts = options or AnonymizeOptions()
    if opts.bones == "dummy" and opts.bone_lengths is None:
        raise ValueError("plan_track with bones='dummy' needs the dummy's bone_lengths (or bones='model')")
    x = check_clip(joints, "track")
    n = len(x)
    if n == 0:
        return TrackPlan(np.zeros((0, T, J, 3), np.float32), lambda _r: x.copy(), 0)
    policy = opts.policy
    if policy is not None and policy.delay == 0:
        return _last_plan(x, opts)
    if policy is not None:
        return _policy_plan(x, policy, opts)
    if opts.mode == "centre":
        return _centre_plan(x, opts)
    return _blend_plan(x, opts)


def anonymize_track(
    joints: npt.ArrayLike, network: Network, options: AnonymizeOptions | None = None
) -> npt.NDArray[np.float32]:
    """Anonymize one person's continuous track ``(N, 25, 3)`` metres -> ``(N, 25, 3)`` metres.

    ``network``: a :class:`Backend` or a ``WindowFn``. Output frames are in the scene where the
    input was (each window's normalisation is undone before blending); the network sees
    ``batch_size`` windows per call.
    """
    opts = options or AnonymizeOptions()
    x = check_clip(joints, "track")  # a bad track is named before the bones are looked up
    lengths = opts.lengths_for(network)
    if lengths is not opts.bone_lengths:
        opts = replace(opts, bone_lengths=lengths)
    window_fn: WindowFn = network.anonymize if isinstance(network, Backend) else network
    plan = plan_track(x, opts)
    w, b = plan.windows, opts.batch_size
    if len(w) == 0:
        return plan.finish(w)
    res = np.concatenate([np.asarray(window_fn(w[s : s + b]), np.float32) for s in range(0, len(w), b)])
    return plan.finish(res)


def _bones(x: npt.NDArray[np.float32], opts: AnonymizeOptions) -> npt.NDArray[np.float32]:
    return x if opts.bone_lengths is None else retarget_bones(x, np.asarray(opts.bone_lengths, np.float32))


def _last_plan(x: npt.NDArray[np.float32], opts: AnonymizeOptions) -> TrackPlan:
    """``last``: frame ``t`` from the end of the window ``t - 74 .. t`` (the start padded with the
    first frame), all windows at once: the same numbers as the service's
    :class:`~pmr_stream.anonymizer.window.WindowStore` (a test compares them bit for bit)."""
    padded = np.concatenate([np.repeat(x[:1], T - 1, axis=0), x])  # (N + 74, 25, 3)
    windows = np.lib.stride_tricks.sliding_window_view(padded, T, axis=0).transpose(0, 3, 1, 2)
    normed, offsets = center_windows(windows)  # one pass over the view: (N, 75, 25, 3), (N, 1, 1, 3)

    def finish(res: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return _bones(uncenter_windows(res[:, -1], offsets[:, 0]).astype(np.float32), opts)

    return TrackPlan(np.ascontiguousarray(normed, dtype=np.float32), finish, len(x))


def _policy_plan(x: npt.NDArray[np.float32], policy: WindowPolicy, opts: AnonymizeOptions) -> TrackPlan:
    """Each frame as the streaming service reads it with ``policy`` (``delay:N``): the track goes
    through a :class:`~pmr_stream.anonymizer.window.WindowStore` (the service's ring buffer: start-up
    padding, per-window normalisation, read position, blending)."""
    key = ("offline", 0)
    store = WindowStore(WindowOptions(policy=policy))
    dues = []
    for t in range(len(x)):
        due, flushed = store.push(key[0], key[1], t, x[t], t, 0)
        assert due is not None and not flushed  # frames 0, 1, 2 ... of one continuous track
        dues.append(due)

    def finish(res: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = np.empty_like(x)
        done = np.zeros(len(x), bool)
        results = [item for d, r in zip(dues, res, strict=True) for item in store.resolve(d, r)]
        for tag, joints in results + store.drop(
            key
        ):  # delay:N: the last N frames, from the windows there are
            assert joints is not None  # nothing fails here: every window is resolved with its output
            out[tag] = joints
            done[tag] = True
        assert done.all()
        return _bones(out, opts)

    return TrackPlan(np.stack([d.window for d in dues]).astype(np.float32, copy=False), finish, len(x))


def _centre_plan(x: npt.NDArray[np.float32], opts: AnonymizeOptions) -> TrackPlan:
    """Each frame ``t`` from the centre (frame 37) of the window ``t - 37 .. t + 37``."""
    n, half = len(x), T // 2
    padded = np.concatenate([np.repeat(x[:1], half, axis=0), x, np.repeat(x[-1:], T - 1 - half, axis=0)])
    windows = np.stack([padded[i : i + T] for i in range(n)])  # (N, 75, 25, 3)
    normed, offsets = center_windows(windows)  # offsets (N, 1, 1, 3)

    def finish(res: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return _bones(uncenter_windows(res[:, half], offsets[:, 0]), opts)

    return TrackPlan(normed, finish, n)


def _blend_plan(x: npt.NDArray[np.float32], opts: AnonymizeOptions) -> TrackPlan:
    """Windows ``stride`` frames apart, overlap-added with a Hann taper."""
    n = len(x)
    padded = pad_to_length(x, T)  # (max(N, 75), 25, 3)
    starts = window_starts(len(padded), T, opts.stride)
    windows = np.stack([padded[s : s + T] for s in starts])  # (W, 75, 25, 3)
    normed, offsets = center_windows(windows)  # offsets (W, 1, 1, 3)

    def finish(res: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = uncenter_windows(res, offsets)  # back in the scene, (W, 75, 25, 3)
        acc = np.zeros(padded.shape, np.float64)
        wsum = np.zeros(len(padded), np.float64)
        wts = blend_weights(T)
        for s, win in zip(starts, out, strict=True):
            acc[s : s + T] += win * wts[:, None, None]
            wsum[s : s + T] += wts
        result = acc / wsum[:, None, None]
        return _bones(result[:n].astype(np.float32), opts)

    return TrackPlan(normed, finish, n)


def _segments(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Runs of True in a boolean vector as (start, stop) pairs."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def anonymize_recording(
    rec: Recording, network: Network, options: AnonymizeOptions | None = None, model_id: str = "pmr"
) -> Recording:
    """Anonymize every person of a recording; frames where a person is absent stay absent.

    ``network``: a :class:`Backend` (e.g. the shipped one from :func:`default_window_fn`) or a
    ``WindowFn``; ``options``: default :class:`AnonymizeOptions` (mode ``last``, the dummy's bones).

    The result carries only what :mod:`pmr_stream.wire.privacy` allows in a file: the anonymized
    joints, presence and timestamps, confidence 1.0 where present (0 where absent), persons
    renumbered 0, 1.. by first appearance (never-present slots dropped), and the metadata of
    :data:`~pmr_stream.wire.privacy.FILE_METADATA` (none of the input's: no source path, NTU name
    parts, body ids, ...). Every writer fills its other fields from that, so a ``.skeleton``
    gets fresh body ids and neutral per-body fields.
    """
    opts = options or AnonymizeOptions()
    lengths = opts.lengths_for(network)  # once, and a plain function without lengths fails here
    if lengths is not opts.bone_lengths:
        opts = replace(opts, bone_lengths=lengths)
    order = fresh_person_order(rec.present)  # new person p is the input's slot order[p]
    n_t, n_j = rec.num_frames, rec.joints.shape[2]
    joints = np.zeros((n_t, len(order), n_j, 3), np.float32)
    for new, p in enumerate(order):
        for a, b in _segments(rec.present[:, p]):
            joints[a:b, new] = anonymize_track(rec.joints[a:b, p], network, opts)
    return _anonymized(rec, order, joints, opts, model_id)


def _anonymized(
    rec: Recording, order: list[int], joints: npt.NDArray[np.float32], opts: AnonymizeOptions, model_id: str
) -> Recording:
    """The anonymized recording: ``joints`` ``(T, P', J, 3)`` of the persons ``order`` and only what
    :mod:`pmr_stream.wire.privacy` allows (see :func:`anonymize_recording`)."""
    present = rec.present[:, order].copy()
    confidence = np.repeat(present[:, :, None], rec.joints.shape[2], axis=2).astype(np.float32)
    meta = file_metadata(model_id, opts.mode, "model" if opts.bone_lengths is None else "dummy")
    return Recording(
        joints=joints, confidence=confidence, timestamps=rec.timestamps.copy(),
        present=present, layout=rec.layout, metadata=meta,
    )  # fmt: skip


@dataclass
class RecordingPlan:
    """Every window of a recording (:func:`plan_recording`), for an engine call shared with other
    recordings; :meth:`finish` turns their results into what :func:`anonymize_recording` returns."""

    windows: npt.NDArray[np.float32]  # (W, 75, 25, 3): the tracks' windows, one after the other
    tracks: list[tuple[int, int, int, TrackPlan]]  # (new person, first frame, stop frame, plan)
    source: Recording
    order: list[int]
    options: AnonymizeOptions

    def finish(self, results: npt.ArrayLike, model_id: str = "pmr") -> Recording:
        """The anonymized recording from the network's output ``(W, 75, 25, 3)`` for :attr:`windows`."""
        res = np.asarray(results, dtype=np.float32)
        if res.shape != self.windows.shape:
            raise ValueError(f"results must have shape {self.windows.shape}, got {res.shape}")
        rec, opts = self.source, self.options
        n_j = rec.joints.shape[2]
        joints = np.zeros((rec.num_frames, len(self.order), n_j, 3), np.float32)
        start = 0
        for new, a, b, plan in self.tracks:
            joints[a:b, new] = plan.finish(res[start : start + len(plan.windows)])
            start += len(plan.windows)
        return _anonymized(rec, self.order, joints, opts, model_id)


def plan_recording(rec: Recording, options: AnonymizeOptions | None = None) -> RecordingPlan:
    """The windows of every person's tracks of ``rec`` (as :func:`anonymize_recording` makes them)."""
    opts = options or AnonymizeOptions()
    order = fresh_person_order(rec.present)
    tracks = [(new, a, b, plan_track(rec.joints[a:b, p], opts))
              for new, p in enumerate(order) for a, b in _segments(rec.present[:, p])]  # fmt: skip
    parts = [plan.windows for *_, plan in tracks]
    windows = np.concatenate(parts) if parts else np.zeros((0, T, J, 3), np.float32)
    return RecordingPlan(windows, tracks, rec, order, opts)


def default_window_fn(
    model_path: str | Path | None = None,
    dummy_path: str | Path | None = None,
    device: str | None = "cpu",
    privacy: str | None = None,
    backend: str = "torch",
    **options: Any,
) -> tuple[Backend, str]:
    """The shipped default model and dummy (or the given ones) as a backend, and a model id.

    Offline anonymization runs the same engine interface as the streaming service
    (:func:`pmr_stream.backends.get_backend`; ``backend`` ``torch`` (default) on ``device``, or any
    other name it takes, ``auto`` with ``device=None``: the fastest here), so the two
    cannot drift: the backend passes the same start-up check (non-finite weights or dummy and a
    bad reference output are refused with :class:`~pmr_stream.backends.base.ModelCheckError`
    naming the file). ``privacy``: the privacy dial's level (``None``: the model's default); a
    model without a dial refuses a level in one line naming the file. ``options``: more
    :class:`~pmr_stream.backends.base.BackendOptions` fields (``threads``, ``spin``).
    """
    from pmr_stream.assets import DEFAULT_DUMMY, DEFAULT_MODEL
    from pmr_stream.backends import get_backend

    mp = Path(model_path) if model_path else DEFAULT_MODEL
    dp = Path(dummy_path) if dummy_path else DEFAULT_DUMMY
    kwargs: dict[str, Any] = {"model_path": str(mp), "dummy": str(dp), "privacy": privacy, **options}
    if device is not None:
        kwargs["device"] = device
    engine = get_backend(backend, **kwargs)
    log.info("anonymizing with %s (dummy %s): %s on %s", mp, dp, engine.name, engine.device)
    return engine, engine.source.model_id
