"""The evaluation's metrics, as plain functions with known answers on small cases.

All take NumPy arrays; accuracies are fractions in ``[0, 1]`` (the tables print percent).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import bone_lengths, median_bone_lengths, retarget_bones


def mse(anonymized: npt.ArrayLike, original: npt.ArrayLike) -> float:
    """Mean squared error over every window, frame, joint and axis (normalised metres, m^2).

    ``anonymized`` and ``original`` are ``(N, T, 25, 3)``. The paper's code used frame 0
    only; this is every frame.
    """
    a = np.asarray(anonymized, dtype=np.float64)
    b = np.asarray(original, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"mse: anonymized {a.shape} and original {b.shape} differ in shape")
    if a.size == 0:
        raise ValueError("mse: no data")
    return float(np.mean((a - b) ** 2))


def topk_accuracy(logits: npt.ArrayLike, labels: npt.ArrayLike, k: int = 1) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores of ``logits`` ``(N, K)``.

    Ties are broken towards the lower class index (a constant score row predicts class 0 first).
    """
    s = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if s.ndim != 2 or y.shape != (s.shape[0],):
        raise ValueError(f"topk_accuracy: logits must be (N, K) and labels (N,), got {s.shape} and {y.shape}")
    if len(y) == 0:
        raise ValueError("topk_accuracy: no rows")
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"topk_accuracy: k must be in 1..{s.shape[1]}, got {k}")
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(order == y[:, None], axis=1)))


def binary_accuracy(logits: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Fraction of ``labels`` (0/1) matched by ``logits > 0``."""
    s = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if s.shape != y.shape or len(y) == 0:
        raise ValueError(
            f"binary_accuracy: logits {s.shape} and labels {y.shape} must be equal and non-empty"
        )
    return float(np.mean((s > 0).astype(np.int64) == y))


def majority_rate(labels: npt.ArrayLike) -> float:
    """Accuracy of always answering the most common label (the chance level of an unbalanced task)."""
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        raise ValueError("majority_rate: no labels")
    return float(np.bincount(y - y.min()).max() / len(y))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


# ----------------------------------------------------------------------------- fidelity (millimetres)


def _joints(x: npt.ArrayLike, what: str) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 2 or a.shape[-2:] != (25, 3):
        raise ValueError(f"{what}: joints must have shape (..., 25, 3), got {a.shape}")
    if a.size == 0:
        raise ValueError(f"{what}: no data")
    return a


def fk_target(original: npt.ArrayLike, dummy: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The person's exact motion on the dummy's body: ``original`` ``(..., T, 25, 3)`` metres with
    every bone set to the dummy's median length (``dummy`` ``(T', 25, 3)``, one window), joint
    angles and root kept (:func:`pmr_stream.skeleton.retarget_bones`)."""
    return retarget_bones(original, median_bone_lengths(dummy))


def mpjpe_mm(output: npt.ArrayLike, target: npt.ArrayLike) -> float:
    """Mean per-joint position error (mm): the mean over every window, frame and joint of the
    Euclidean distance between ``output`` and ``target`` ``(N, T, 25, 3)`` (metres)."""
    a, b = _joints(output, "mpjpe"), _joints(target, "mpjpe")
    if a.shape != b.shape:
        raise ValueError(f"mpjpe: output {a.shape} and target {b.shape} differ in shape")
    return float(1000.0 * np.linalg.norm(a - b, axis=-1).mean())


def bone_length_error_mm(output: npt.ArrayLike, lengths: npt.ArrayLike) -> float:
    """Mean absolute bone-length error (mm): ``|bone length of output - lengths|`` averaged over
    every window, frame and bone; ``output`` ``(..., 25, 3)`` metres, ``lengths`` ``(24,)`` metres
    (e.g. the dummy's median bone lengths)."""
    a = _joints(output, "bone_length_error")
    want = np.asarray(lengths, dtype=np.float64)
    if want.shape != (24,):
        raise ValueError(f"bone_length_error: lengths must have shape (24,), got {want.shape}")
    return float(1000.0 * np.abs(bone_lengths(a).astype(np.float64) - want).mean())


def jitter_mm(output: npt.ArrayLike) -> float:
    """Jitter (mm/frame^2): the mean over windows, frames and joints of the norm of the second
    difference over time ``x[t+1] - 2 x[t] + x[t-1]`` of ``output`` ``(N, T, 25, 3)`` metres (T >= 3)."""
    a = _joints(output, "jitter")
    if a.ndim != 4 or a.shape[1] < 3:
        raise ValueError(f"jitter: windows must have shape (N, T >= 3, 25, 3), got {a.shape}")
    acc = a[:, 2:] - 2.0 * a[:, 1:-1] + a[:, :-2]
    return float(1000.0 * np.linalg.norm(acc, axis=-1).mean())


__all__ = [
    "binary_accuracy", "bone_length_error_mm", "fk_target", "jitter_mm", "majority_rate", "mean_std", "mpjpe_mm", "mse",
    "topk_accuracy",
]  # fmt: skip
