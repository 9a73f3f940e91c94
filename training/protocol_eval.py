"""Protocol tables: every anonymizer as users get it, measured by fixed and adaptive attackers.

One table per split of :mod:`training.protocols` (``cross-take``: no shared performance;
``cross-view``: the paper's). Every method is an :class:`Anonymizer` with the constant dummy,
measured through the paths users get: offline (each whole test clip through ``pmr
anonymize``'s :func:`~pmr_stream.offline.anonymize_track`, default options, then the centre
window's frames) and streaming (:func:`training.evaluate.stream_outputs`). Columns: fidelity
(MPJPE against the FK retarget of the original onto the dummy's bones, bone-length error,
jitter; mm) and, side by side, what the fixed evaluators (trained on originals) and the
adaptive attackers (:mod:`training.adaptive`: warm-started from them, fine-tuned on the
method's own anonymized training clips) measure: action, re-ID, gender, linkage. The
markdown table and the chart: :mod:`training.report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import median_bone_lengths

from .adaptive import AdaptiveSpec
from .data import ClipSet
from .evaluate import chance_levels, predict, score, stream_outputs
from .evaluators import Evaluators, centre_windows, linkage_pairs
from .metrics import bone_length_error_mm, fk_target, jitter_mm, mean_std, mpjpe_mm

#: Accuracy metrics of the protocol tables, each measured by the fixed and the adaptive attackers.
ATTACK_METRICS: Final[tuple[str, ...]] = (
    "action_top1",
    "action_top5",
    "reid_top1",
    "reid_top5",
    "gender",
    "linkage",
)
FIDELITY: Final[tuple[str, ...]] = ("mpjpe_mm", "bone_error_mm", "jitter_mm")


@dataclass
class Anonymizer:
    """A constant-dummy method as users get it, for the protocol tables.

    ``window_fn``: normalised windows ``(B, 75, 25, 3)`` -> anonymized ``(B, 75, 25, 3)``;
    ``bone_lengths`` ``(24,)`` metres: the service's dummy-bone step after it (``None``: none);
    ``stream``: a factory of the backend for a streaming-path row (``None``: no such
    row), named ``stream_name``, its outputs bone-stepped when ``stream_bones``.
    """

    name: str
    kind: str
    window_fn: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
    bone_lengths: npt.NDArray[np.float32] | None = None
    stream: Callable[[], Any] | None = None
    stream_name: str = ""
    stream_bones: bool = True
    source: str = ""


@dataclass
class ProtocolRow:
    """One row of a protocol table: fidelity, and per seed the fixed and the adaptive attackers' figures.

    ``path``: ``-`` (Original), ``offline`` or ``streaming``; ``attacker_seconds``: what the
    adaptive attackers cost (anonymizing the training clips and fine-tuning all of them;
    ``None`` where none were trained); ``adaptive_note`` says where the adaptive figures come from.
    """

    method: str
    kind: str
    path: str
    fidelity: dict[str, float] = field(default_factory=dict)
    fixed: list[dict[str, float]] = field(default_factory=list)
    adaptive: list[dict[str, float]] = field(default_factory=list)
    adaptive_note: str = ""
    attacker_seconds: float | None = None
    attacker_facts: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def summary(self, which: str) -> dict[str, tuple[float, float]]:
        per_seed = self.fixed if which == "fixed" else self.adaptive
        keys = [k for k in ATTACK_METRICS if any(k in s for s in per_seed)]
        return {k: mean_std([s[k] for s in per_seed if k in s]) for k in keys}

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "kind": self.kind, "path": self.path, "source": self.source,
                "fidelity": self.fidelity, "fixed": {"per_seed": self.fixed, **_ms(self.summary("fixed"))},
                "adaptive": {"per_seed": self.adaptive, **_ms(self.summary("adaptive"))},
                "adaptive_note": self.adaptive_note, "attacker_seconds": self.attacker_seconds,
                "attacker_facts": self.attacker_facts}  # fmt: skip


def _ms(summary: dict[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
    return {"mean": {k: v[0] for k, v in summary.items()}, "std": {k: v[1] for k, v in summary.items()}}


@dataclass
class ProtocolResult:
    """The fixed/adaptive table of one protocol."""

    protocol: str
    description: str
    rows: list[ProtocolRow]
    chance: dict[str, float]
    seeds: list[int]
    seconds: float
    info: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "description": self.description, "seeds": self.seeds, "seconds": self.seconds,
                "chance": self.chance, "info": self.info, "rows": [r.to_json() for r in self.rows]}  # fmt: skip


def offline_windows(clips: ClipSet, an: Anonymizer, progress: bool = False) -> npt.NDArray[np.float32]:
    """The offline path at the evaluation's frames: each whole clip through ``pmr anonymize``'s
    :func:`~pmr_stream.offline.anonymize_track` (default options, ``an``'s bone step), then
    the centre 75-frame window's frames (the frames :func:`centre_windows` takes) ``(N, 75, 25, 3)``."""
    from .adaptive import offline_clips

    return centre_windows(
        offline_clips(clips, an.window_fn, an.bone_lengths, progress=progress, desc=f"{an.name} offline")
    )


def fidelity(
    output: npt.NDArray[np.float32], original: npt.NDArray[np.float32], dummy: npt.NDArray[np.float32]
) -> dict[str, float]:
    """MPJPE against the FK retarget of ``original`` onto ``dummy``'s bones, bone-length error
    against the dummy's median bones and jitter, all in mm (see :mod:`training.metrics`)."""
    target = fk_target(original, dummy)
    return {"mpjpe_mm": mpjpe_mm(output, target), "bone_error_mm": bone_length_error_mm(output, median_bone_lengths(dummy)),
            "jitter_mm": jitter_mm(output)}  # fmt: skip


def evaluate_protocol(
    protocol: str,
    ev: Evaluators,
    train: ClipSet,
    test: ClipSet,
    anonymizers: list[Anonymizer],
    dummy: npt.NDArray[np.float32],
    seeds: list[int],
    *,
    adaptive: AdaptiveSpec | None = None,
    stream_policy: str = "last",
    description: str = "",
    progress: bool = True,
    device: str = "cpu",
    announce: Callable[[str], None] = print,
    info: dict[str, Any] | None = None,
) -> ProtocolResult:
    """One protocol's table: every anonymizer's offline row (and streaming row where it has a
    backend), each measured by the fixed evaluators ``ev`` (trained on ``train``'s originals)
    and by adaptive attackers warm-started from them and fine-tuned on the method's own
    anonymized ``train`` clips (``adaptive=None``: no adaptive columns).

    Adaptive linkage: both windows of a pair are anonymized. The Original row's adaptive
    figures are the fixed ones (nothing to retrain on); a streaming row reuses the adaptive
    attackers of its offline row (the attacker anonymizes his data with the offline tool).
    Seeds draw the linkage pairs; the attackers are trained once (seed ``adaptive.seed``).
    """
    from .adaptive import attacker_clips, offline_clips, train_attackers

    t0 = time.perf_counter()
    dummy = np.asarray(dummy, np.float32)
    original = centre_windows(test)
    pairs = {s: linkage_pairs(test.performer, np.random.default_rng([s, 99])) if "linkage" in ev.models
             else np.zeros((0, 3), np.int64) for s in seeds}  # fmt: skip
    reference = predict(ev, original)

    def measure(row: ProtocolRow, out: npt.NDArray[np.float32], attackers: Evaluators | None) -> None:
        if out.shape != original.shape:
            raise ValueError(f"{row.method}: anonymizer returned {out.shape}, expected {original.shape}")
        row.fidelity = fidelity(out, original, dummy)
        fixed = predict(ev, out)
        adapt = predict(attackers, out) if attackers is not None else None
        for s in seeds:
            row.fixed.append(score(ev, test, fixed, pairs[s], reference, float("nan")))
            if adapt is not None and attackers is not None:
                row.adaptive.append(score(attackers, test, adapt, pairs[s], adapt, float("nan")))
        row.fixed = [{k: v for k, v in m.items() if k != "mse"} for m in row.fixed]
        row.adaptive = [{k: v for k, v in m.items() if k != "mse"} for m in row.adaptive]

    orig = ProtocolRow("Original", "original", "-", adaptive_note="= fixed (nothing to retrain on)")
    measure(orig, original, None)
    orig.fidelity["target_jitter_mm"] = jitter_mm(fk_target(original, dummy))
    orig.adaptive = [dict(m) for m in orig.fixed]
    rows = [orig]
    train_sub = attacker_clips(train, adaptive) if adaptive is not None else train
    for an in anonymizers:
        announce(f"{protocol}: {an.name} offline ({len(test)} test clips) ...")
        row = ProtocolRow(f"{an.name} offline", an.kind, "offline", source=an.source)
        out = offline_windows(test, an, progress=progress)
        attackers = None
        if adaptive is not None:
            t1 = time.perf_counter()
            anon_train = offline_clips(train_sub, an.window_fn, an.bone_lengths, progress=progress,
                                       desc=f"{an.name}: anonymizing the attackers' training clips")  # fmt: skip
            t_anon = time.perf_counter() - t1
            attackers, facts = train_attackers(
                ev, anon_train, adaptive, progress=progress, device=device, announce=announce
            )
            del anon_train
            row.attacker_seconds = time.perf_counter() - t1
            row.attacker_facts = {"anonymize_seconds": t_anon, "train_clips": len(train_sub), **facts}
            row.adaptive_note = (
                f"retrained on {len(train_sub)} anonymized training clips, {adaptive.epochs} epochs"
            )
            announce(f"{protocol}: {an.name}: adaptive attackers cost {row.attacker_seconds:.0f} s "
                     f"({t_anon:.0f} s anonymizing, {facts['seconds']:.0f} s training)")  # fmt: skip
        measure(row, out, attackers)
        rows.append(row)
        if an.stream is not None:
            announce(f"{protocol}: {an.stream_name or an.name} streaming ...")
            backend = an.stream()
            try:
                window = getattr(getattr(backend, "source", None), "dummy_window", None)
                bones = (
                    median_bone_lengths(window if window is not None else dummy) if an.stream_bones else None
                )
                s_out = stream_outputs(test, backend, stream_policy, progress=progress, bones=bones)
                name = getattr(backend, "name", "backend")
            finally:
                if hasattr(backend, "close"):
                    backend.close()
            srow = ProtocolRow(an.stream_name or f"{an.name} streaming ({stream_policy}, {name})", an.kind, "streaming",
                               source=an.source,
                               adaptive_note="the offline row's attackers (the attacker anonymizes his data offline)")  # fmt: skip
            measure(srow, s_out, attackers)
            rows.append(srow)
        del attackers
    info = dict(info or {})
    info.update(test_clips=len(test), train_clips=len(train), attacker_train_clips=len(train_sub) if adaptive else None,
                adaptive=adaptive.to_dict() if adaptive else None, stream_policy=stream_policy)  # fmt: skip
    return ProtocolResult(
        protocol, description, rows, chance_levels(test, ev), list(seeds), time.perf_counter() - t0, info
    )


__all__ = [
    "ATTACK_METRICS", "Anonymizer", "FIDELITY", "ProtocolResult", "ProtocolRow", "evaluate_protocol", "fidelity",
    "offline_windows",
]  # fmt: skip
