"""Adaptive attackers: evaluators retrained on a method's own anonymized training data.

The fixed evaluators (:mod:`training.evaluators`) are trained on original clips and never
see anonymized data: a method can fool them by distorting the motion without removing
what identifies the person. An attacker who holds recordings of people (the training
split) anonymizes them with the public tool, exactly as the method publishes its output
(:func:`offline_clips`: :func:`pmr_stream.offline.anonymize_track` with the default
options), and retrains on the result. The same holds for a researcher who trains an
action recogniser on a released, anonymized dataset (adaptive utility).

To be affordable on two CPU cores the attackers are warm-started from the fixed
evaluators' weights and fine-tuned for a few epochs (:class:`AdaptiveSpec`) with the
evaluators' own training loop (random 75-frame crops, rotation augmentation, cosine
schedule). The linkage attacker is fine-tuned on pairs of anonymized training windows:
at test time both windows of a pair are anonymized (he anonymizes his references too).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import torch
from tqdm.auto import tqdm

from pmr_stream.offline import AnonymizeOptions, WindowFn, anonymize_track

from .data import ClipSet
from .evaluators import Evaluators, EvaluatorSpec, Task, train_classifier, train_linkage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdaptiveSpec:
    """How the adaptive attackers are fine-tuned from the fixed evaluators.

    ``epochs``: fine-tuning epochs of each attacker; ``lr_scale``: its peak learning rate
    as a fraction of the fixed evaluators' (cosine decay from there); ``max_clips``: train
    on at most this many training clips (a seeded random subset; ``None``: all);
    ``seed``: the subset's and the training's seed.
    """

    epochs: int = 6
    lr_scale: float = 0.5
    max_clips: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"adaptive epochs must be at least 1, got {self.epochs}")
        if not self.lr_scale > 0:
            raise ValueError(f"adaptive lr_scale must be positive, got {self.lr_scale}")
        if self.max_clips is not None and self.max_clips < 2:
            raise ValueError(f"adaptive max_clips must be at least 2 (or None), got {self.max_clips}")

    def evaluator_spec(self, fixed: EvaluatorSpec) -> EvaluatorSpec:
        """The fixed evaluators' spec with this fine-tuning's epochs, learning rate and seed."""
        return dataclasses.replace(
            fixed, epochs=self.epochs, lr=fixed.lr * self.lr_scale, seed=fixed.seed + 1 + self.seed
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def attacker_clips(clips: ClipSet, spec: AdaptiveSpec) -> ClipSet:
    """The training clips the attackers get: all, or a seeded random ``spec.max_clips`` of them."""
    if spec.max_clips is None or spec.max_clips >= len(clips):
        return clips
    rng = np.random.default_rng([spec.seed, 17])
    return clips.subset(np.sort(rng.choice(len(clips), size=spec.max_clips, replace=False)))


def offline_clips(
    clips: ClipSet, window_fn: WindowFn, bone_lengths: npt.ArrayLike | None = None, *, progress: bool = False,
    desc: str = "anonymizing",
) -> ClipSet:  # fmt: skip
    """Every clip of ``clips`` anonymized as ``pmr anonymize`` does it: the whole clip through
    :func:`~pmr_stream.offline.anonymize_track` with the default :class:`AnonymizeOptions`
    (``bone_lengths`` ``(24,)`` metres: the dummy-bone step; ``None``: none). Labels are kept;
    each clip keeps its length ``(T_i, 25, 3)``."""
    bones = None if bone_lengths is None else tuple(float(b) for b in np.asarray(bone_lengths).reshape(-1))
    opts = AnonymizeOptions(bone_lengths=bones, bones="model" if bones is None else "dummy")
    out = []
    for c in tqdm(clips.clips, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        y = np.asarray(anonymize_track(c, window_fn, opts), dtype=np.float32)
        if y.shape != c.shape:
            raise ValueError(f"{desc}: the anonymizer returned {y.shape} for a clip of shape {c.shape}")
        out.append(y)
    return dataclasses.replace(clips, clips=out)


def train_attackers(
    fixed: Evaluators, anonymized_train: ClipSet, spec: AdaptiveSpec, *, progress: bool = False,
    device: str = "cpu", announce: Callable[[str], None] = log.info,
) -> tuple[Evaluators, dict[str, Any]]:  # fmt: skip
    """Fine-tune a copy of each fixed evaluator on ``anonymized_train`` (the method's anonymized
    training clips). ``fixed`` is left unchanged. Returns the attackers and their facts
    (per task: training accuracy of the last epoch, seconds; ``seconds``: all of them)."""
    es = spec.evaluator_spec(fixed.spec)
    models: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    t0 = time.perf_counter()
    for task, model in fixed.models.items():
        new: torch.nn.Module
        if task == "linkage":
            new, f = train_linkage(anonymized_train, es, progress=progress, device=device, init=model)
        else:
            new, f = train_classifier(
                anonymized_train, cast(Task, task), es, progress=progress, device=device, init=model
            )
        models[task] = new
        facts[task] = f
        announce(f"adaptive {task} attacker: {es.epochs} epochs on {len(anonymized_train)} anonymized clips, "
                 f"{f['train_seconds']:.0f} s")  # fmt: skip
    facts["seconds"] = time.perf_counter() - t0
    facts["spec"] = spec.to_dict()
    # the fixed evaluators went back to their device in eval mode; put them back the same way
    for m in fixed.models.values():
        m.to(fixed.device).eval()
    return Evaluators(models, facts, es, fixed.device), facts


__all__ = ["AdaptiveSpec", "attacker_clips", "offline_clips", "train_attackers"]
