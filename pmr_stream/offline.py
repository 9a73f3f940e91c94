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
interface the streaming service runs; :func:`default_window_fn` builds the shipped one) or
any function of that shape (the evaluation's baselines).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pmr_stream.anonymizer.window import POLICY_HELP, WindowOptions, WindowPolicy, WindowStore, center_batch
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
    ``bone_lengths``: ``(24,)`` metres (e.g. :func:`~pmr_stream.skeleton.median_bone_lengths` of the dummy): every
    output bone is set to that length by forward kinematics, directions kept, after the
    policy's blending, as the streaming service does by default; ``None`` keeps the
    network's output as it is.
    """

    mode: str = "last"
    stride: int = 25
    batch_size: int = 256
    bone_lengths: tuple[float, ...] | None = None

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

    @property
    def policy(self) -> WindowPolicy | None:
        """The streaming window policy this mode reads like, or None (``centre``, ``blend``)."""
        return None if self.mode in OFFLINE_MODES else WindowPolicy.parse(self.mode)


def anonymize_track(
    joints: npt.ArrayLike, window_fn: WindowFn, options: AnonymizeOptions | None = None
) -> npt.NDArray[np.float32]:
    """Anonymize one person's continuous track ``(N, 25, 3)`` metres -> ``(N, 25, 3)`` metres.

    Output frames are in the scene where the input was (each window's
    normalisation is undone before blending).
    """
    opts = options or AnonymizeOptions()
    x = check_clip(joints, "track")
    n = len(x)
    if n == 0:
        return x.copy()
    policy = opts.policy
    if policy is not None:
        return _bones(_policy_windows(x, window_fn, policy, opts.batch_size), opts)
    if opts.mode == "centre":
        return _bones(_centre_windows(x, window_fn, opts.batch_size), opts)
    padded = pad_to_length(x, T)  # (max(N, 75), 25, 3)
    starts = window_starts(len(padded), T, opts.stride)
    windows = np.stack([padded[s : s + T] for s in starts])  # (W, 75, 25, 3)
    normed, offsets = center_windows(windows)  # offsets (W, 1, 1, 3)
    out = np.concatenate(
        [window_fn(normed[s : s + opts.batch_size]) for s in range(0, len(normed), opts.batch_size)]
    )
    out = uncenter_windows(out, offsets)  # back in the scene, (W, 75, 25, 3)
    acc = np.zeros(padded.shape, np.float64)
    wsum = np.zeros(len(padded), np.float64)
    wts = blend_weights(T)
    for s, win in zip(starts, out, strict=True):
        acc[s : s + T] += win * wts[:, None, None]
        wsum[s : s + T] += wts
    result = acc / wsum[:, None, None]
    return _bones(result[:n].astype(np.float32), opts)


def _bones(x: npt.NDArray[np.float32], opts: AnonymizeOptions) -> npt.NDArray[np.float32]:
    return x if opts.bone_lengths is None else retarget_bones(x, np.asarray(opts.bone_lengths, np.float32))


def _policy_windows(
    x: npt.NDArray[np.float32], window_fn: WindowFn, policy: WindowPolicy, batch_size: int
) -> npt.NDArray[np.float32]:
    """Each frame as the streaming service reads it with ``policy``: the track ``(N, 25, 3)`` goes
    through a :class:`~pmr_stream.anonymizer.window.WindowStore` (the service's ring buffer: start-up
    padding, per-window normalisation, read position, blending), ``batch_size`` windows per call."""
    key = ("offline", 0)
    store = WindowStore(WindowOptions(policy=policy))
    out = np.empty_like(x)
    done = np.zeros(len(x), bool)

    def put(results: list[tuple[Any, npt.NDArray[np.float32] | None]]) -> None:
        for tag, joints in results:
            assert joints is not None  # nothing fails here: every window is resolved with its output
            out[tag] = joints
            done[tag] = True

    for s in range(0, len(x), batch_size):
        dues = []
        for t in range(s, min(len(x), s + batch_size)):
            due, flushed = store.push(key[0], key[1], t, x[t], t, 0)
            assert due is not None and not flushed  # frames 0, 1, 2 ... of one continuous track
            dues.append(due)
        res = np.asarray(window_fn(center_batch(dues)), dtype=np.float32)  # (b, 75, 25, 3)
        for d, r in zip(dues, res, strict=True):
            put(store.resolve(d, r))
    put(store.drop(key))  # delay:N: the last N frames, from the windows there are
    assert done.all()
    return out


def _centre_windows(
    x: npt.NDArray[np.float32], window_fn: WindowFn, batch_size: int
) -> npt.NDArray[np.float32]:
    """Each frame ``t`` from the centre (frame 37) of the window ``t - 37 .. t + 37``."""
    n, half = len(x), T // 2
    padded = np.concatenate([np.repeat(x[:1], half, axis=0), x, np.repeat(x[-1:], T - 1 - half, axis=0)])
    out = np.empty_like(x)
    for s in range(0, n, batch_size):
        idx = np.arange(s, min(n, s + batch_size))
        windows = np.stack([padded[i : i + T] for i in idx])  # (b, 75, 25, 3)
        normed, offsets = center_windows(windows)  # offsets (b, 1, 1, 3)
        res = window_fn(normed)  # (b, 75, 25, 3)
        out[idx] = uncenter_windows(res[:, half], offsets[:, 0])
    return out


def _segments(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Runs of True in a boolean vector as (start, stop) pairs."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def anonymize_recording(
    rec: Recording, window_fn: WindowFn, options: AnonymizeOptions | None = None, model_id: str = "pmr"
) -> Recording:
    """Anonymize every person of a recording; frames where a person is absent stay absent.

    The result carries only what :mod:`pmr_stream.wire.privacy` allows in a file: the anonymized
    joints, presence and timestamps, confidence 1.0 where present (0 where absent), persons
    renumbered 0, 1.. by first appearance (never-present slots dropped), and the metadata of
    :data:`~pmr_stream.wire.privacy.FILE_METADATA` (none of the input's: no source path, NTU name
    parts, body ids, ...). Every writer fills its other fields from that, so a ``.skeleton``
    gets fresh body ids and neutral per-body fields.
    """
    opts = options or AnonymizeOptions()
    order = fresh_person_order(rec.present)  # new person p is the input's slot order[p]
    n_t, n_j = rec.num_frames, rec.joints.shape[2]
    joints = np.zeros((n_t, len(order), n_j, 3), np.float32)
    present = rec.present[:, order].copy()
    for new, p in enumerate(order):
        for a, b in _segments(rec.present[:, p]):
            joints[a:b, new] = anonymize_track(rec.joints[a:b, p], window_fn, opts)
    confidence = np.repeat(present[:, :, None], n_j, axis=2).astype(np.float32)  # nothing of the raw's
    meta = file_metadata(model_id, opts.mode, "model" if opts.bone_lengths is None else "dummy")
    return Recording(
        joints=joints, confidence=confidence, timestamps=rec.timestamps.copy(),
        present=present, layout=rec.layout, metadata=meta,
    )  # fmt: skip


def default_window_fn(
    model_path: str | Path | None = None,
    dummy_path: str | Path | None = None,
    device: str = "cpu",
    privacy: str | None = None,
) -> tuple[Backend, str]:
    """The shipped default model and dummy (or the given ones) as a backend, and a model id.

    Offline anonymization runs the same engine interface as the streaming service
    (:func:`pmr_stream.backends.get_backend`, the PyTorch backend on ``device``), so the two
    cannot drift: the backend passes the same start-up check (non-finite weights or dummy and a
    bad reference output are refused with :class:`~pmr_stream.backends.base.ModelCheckError`
    naming the file). ``privacy``: the privacy dial's level (``None``: the model's default); a
    model without a dial refuses a level in one line naming the file.
    """
    from pmr_stream.assets import DEFAULT_DUMMY, DEFAULT_MODEL
    from pmr_stream.backends import get_backend

    mp = Path(model_path) if model_path else DEFAULT_MODEL
    dp = Path(dummy_path) if dummy_path else DEFAULT_DUMMY
    backend = get_backend("torch", model_path=str(mp), dummy=str(dp), device=device, privacy=privacy)
    log.info("anonymizing with %s (dummy %s) on %s", mp, dp, backend.device)
    return backend, backend.source.model_id
