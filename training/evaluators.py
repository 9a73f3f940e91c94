"""The evaluators: SGN classifiers (action, re-identification, gender) and the linkage attacker.

All four are trained on *original* clips of the training split (random 75-frame crops,
random rotation about the vertical axis as augmentation) and never see anonymized data.
They are cached in a directory, one ``<name>.pt`` (a ``state_dict``, read back with
``weights_only=True``) and one ``<name>.json`` (what it was trained on) each. A cached
evaluator is used only when its JSON matches the training data's fingerprint, the
evaluator's settings and :data:`EVALUATOR_VERSION`; otherwise it is trained again and
the log says why.

Linkage: a siamese SGN pair answers "same performer?" for two windows. It is trained
on balanced pairs of original training windows (half the same performer, a different
clip; half different performers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from pmr_stream.skeleton import crop_clip

from .data import ClipSet
from .sgn import SGNClassifier, SGNConfig, SiameseSGN

log = logging.getLogger(__name__)

#: Bump when the evaluators' architecture or training changes: every cache goes stale.
EVALUATOR_VERSION: Final[int] = 1

Task = Literal["action", "reid", "gender", "linkage"]
TASKS: Final[tuple[Task, ...]] = ("action", "reid", "gender", "linkage")


@dataclass(frozen=True)
class EvaluatorSpec:
    """How an evaluator is trained.

    ``sgn``: network size (the stand-in default is a slimmer SGN than the paper's, for
    2-core CPUs: ``SGNConfig(embed=64, feature=512, segments=20)`` is SGN as published);
    ``rotate_deg``: random rotation about the vertical axis, +-degrees (augmentation);
    ``pairs_per_epoch``: linkage pairs drawn per epoch (at most two per training clip).
    """

    sgn: SGNConfig = field(default_factory=lambda: SGNConfig(embed=32, feature=256, segments=12))
    epochs: int = 25
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    rotate_deg: float = 50.0
    pairs_per_epoch: int = 2048
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def paper(cls) -> EvaluatorSpec:
        """SGN at its published size (for a GPU, e.g. on NTU-60)."""
        return cls(sgn=SGNConfig(), epochs=60)


def fingerprint(clips: ClipSet) -> str:
    """SHA-256 over a clip set's joints and labels (identifies the training data of a cache)."""
    h = hashlib.sha256()
    for key in ("action", "performer", "gender", "camera", "replication"):
        h.update(np.ascontiguousarray(getattr(clips, key)).tobytes())
    h.update(clips.lengths().tobytes())
    for c in clips.clips:
        h.update(np.ascontiguousarray(c, dtype=np.float32).tobytes())
    return h.hexdigest()


def rotate_y(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate windows ``(B, T, 25, 3)`` about the vertical (y) axis by ``degrees`` ``(B,)``."""
    a = torch.deg2rad(degrees).to(x.dtype)
    c, s = torch.cos(a), torch.sin(a)
    z, o = torch.zeros_like(a), torch.ones_like(a)
    r = torch.stack(
        [torch.stack([c, z, s], -1), torch.stack([z, o, z], -1), torch.stack([-s, z, c], -1)], -2
    )  # (B,3,3)
    return torch.einsum("btjk,blk->btjl", x, r)


def labels_of(clips: ClipSet, task: Task) -> npt.NDArray[np.int64]:
    """Class labels ``(N,)`` of a classification task (performer for ``reid`` and ``linkage``)."""
    return {
        "action": clips.action,
        "reid": clips.performer,
        "gender": clips.gender,
        "linkage": clips.performer,
    }[task]


def num_classes(clips: ClipSet, task: Task) -> int:
    return {"action": clips.num_actions, "reid": clips.num_performers, "gender": 2, "linkage": 2}[task]


def centre_windows(clips: ClipSet) -> npt.NDArray[np.float32]:
    """The middle 75-frame window of every clip ``(N, 75, 25, 3)`` (the evaluation's input)."""
    return np.stack([crop_clip(c, "centre") for c in clips.clips]).astype(np.float32)


class _Crops:
    """Random 75-frame crops of the training clips, one per clip and epoch."""

    def __init__(self, clips: ClipSet, seed: int) -> None:
        self.clips = clips
        self.seed = seed

    def batch(self, idx: npt.NDArray[np.int64], epoch: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, epoch, int(idx[0]) if len(idx) else 0])
        return torch.from_numpy(np.stack([crop_clip(self.clips.clips[i], "random", rng=rng) for i in idx]))


def _augment(x: torch.Tensor, spec: EvaluatorSpec, g: torch.Generator) -> torch.Tensor:
    if spec.rotate_deg <= 0:
        return x
    deg = (torch.rand(x.shape[0], generator=g) * 2 - 1) * spec.rotate_deg
    return rotate_y(x, deg)


def _lr_at(spec: EvaluatorSpec, step: int, steps: int) -> float:
    return spec.lr * 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1)))  # cosine decay


#: One step's batch: the model's inputs and the target, on the training device.
Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]


def _fit(
    model: torch.nn.Module,
    spec: EvaluatorSpec,
    g: torch.Generator,
    per_epoch: int,
    batches: Callable[[int], Iterator[Batch]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    hits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    desc: str,
    progress: bool,
) -> tuple[float, float]:
    """The evaluators' training loop: AdamW with the spec's schedule, ``per_epoch`` steps of
    ``batches(epoch)`` per epoch, a progress bar. Returns (training accuracy of the last
    epoch, seconds); the model is left on the CPU in eval mode."""  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    steps = spec.epochs * per_epoch
    t0 = time.perf_counter()
    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    model.train()
    step, correct, seen = 0, 0, 0
    for epoch in range(spec.epochs):
        correct, seen = 0, 0
        for inputs, target in batches(epoch):
            for group in opt.param_groups:
                group["lr"] = _lr_at(spec, step, steps)
            logits = model(*inputs, g)
            loss = loss_fn(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct += int(hits(logits, target).sum())
            seen += len(target)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{correct / seen:.3f}")
    bar.close()
    model.cpu().eval()
    return correct / max(seen, 1), time.perf_counter() - t0


def train_classifier(
    clips: ClipSet,
    task: Task,
    spec: EvaluatorSpec,
    *,
    progress: bool = True,
    device: str = "cpu",
    init: torch.nn.Module | None = None,
) -> tuple[SGNClassifier, dict[str, Any]]:
    """Train an SGN classifier for ``task`` on ``clips``: ``(model, facts)`` (model on the CPU, eval mode).

    ``init``: warm start, a trained classifier of the same task and size whose weights are
    copied (it is left as it is); ``None`` starts from the usual random initialisation.
    """  # fmt: skip
    if task == "linkage":
        raise ValueError("linkage is trained by train_linkage")
    y = labels_of(clips, task)
    if (y < 0).any():
        raise ValueError(
            f"{task}: {int((y < 0).sum())} training clips have no label (e.g. NTU-60 genders need --genders CSV)"
        )
    k = num_classes(clips, task)
    torch.manual_seed(spec.seed)
    g = torch.Generator().manual_seed(spec.seed)
    dev = torch.device(device)
    model = _start(SGNClassifier(k, spec.sgn), init, f"{task} warm start").to(dev)
    crops = _Crops(clips, spec.seed)
    rng = np.random.default_rng(spec.seed)
    n = len(clips)
    per_epoch = max(1, n // spec.batch_size)

    def batches(epoch: int) -> Iterator[Batch]:
        perm = rng.permutation(n)
        for b in range(per_epoch):
            idx = perm[b * spec.batch_size : (b + 1) * spec.batch_size]
            yield (_augment(crops.batch(idx, epoch), spec, g).to(dev),), torch.from_numpy(y[idx]).to(dev)

    acc, seconds = _fit(model, spec, g, per_epoch, batches, F.cross_entropy,
                        lambda logits, target: logits.argmax(1) == target, f"train {task} evaluator", progress)  # fmt: skip
    return model, {
        "train_accuracy_last_epoch": acc,
        "train_seconds": seconds,
        "num_classes": k,
        "train_clips": n,
    }


_M = TypeVar("_M", bound=torch.nn.Module)


def _start(model: _M, init: torch.nn.Module | None, what: str) -> _M:
    """``model`` with ``init``'s weights copied in (``init`` itself untouched), or as it is."""
    if init is None:
        return model
    try:
        model.load_state_dict({k: v.detach().clone().cpu() for k, v in init.state_dict().items()})
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(f"{what}: the initial model does not match the evaluator spec ({first})") from None
    return model


def linkage_pairs(
    performer: npt.ArrayLike, rng: np.random.Generator, count: int | None = None
) -> npt.NDArray[np.int64]:
    """Balanced pairs ``(M, 3)`` of ``(a, b, same)`` over clips with labels ``performer`` ``(N,)``.

    With ``count=None`` every clip is the first member of exactly one positive and one
    negative pair (``M = 2N``), so an attacker whose answer ignores the second member
    scores exactly 50%. Otherwise ``count`` random pairs, half positive. Positive
    partners are a different clip of the same performer; clips of a performer with one
    clip only are skipped as anchors.
    """
    p = np.asarray(performer, dtype=np.int64)
    by: dict[int, npt.NDArray[np.int64]] = {int(v): np.flatnonzero(p == v) for v in np.unique(p)}
    anchors = np.array([i for i in range(len(p)) if len(by[int(p[i])]) > 1], dtype=np.int64)
    if len(anchors) == 0 or len(by) < 2:
        raise ValueError("linkage pairs need at least two performers and one performer with two clips")
    if count is not None:
        anchors = rng.choice(anchors, size=max(1, count // 2), replace=True)
    rows = []
    for a in anchors:
        same = by[int(p[a])]
        b = same[rng.integers(len(same) - 1)]
        b = b if b != a else same[-1]
        other = np.flatnonzero(p != p[a])
        rows.append((a, b, 1))
        rows.append((a, int(other[rng.integers(len(other))]), 0))
    return np.array(rows, dtype=np.int64)


def train_linkage(
    clips: ClipSet,
    spec: EvaluatorSpec,
    *,
    progress: bool = True,
    device: str = "cpu",
    init: torch.nn.Module | None = None,
) -> tuple[SiameseSGN, dict[str, Any]]:
    """Train the siamese linkage attacker on pairs of windows of ``clips`` (model returned on the CPU).

    ``init``: warm start from a trained linkage attacker of the same size (copied, left as it is).
    """
    torch.manual_seed(spec.seed)
    g = torch.Generator().manual_seed(spec.seed)
    dev = torch.device(device)
    model = _start(SiameseSGN(spec.sgn), init, "linkage warm start").to(dev)
    crops = _Crops(clips, spec.seed + 7)
    rng = np.random.default_rng(spec.seed + 7)
    pairs_per_epoch = min(spec.pairs_per_epoch, 2 * len(clips))  # at most one pair each way per clip
    per_epoch = max(1, pairs_per_epoch // spec.batch_size)

    def batches(epoch: int) -> Iterator[Batch]:
        pairs = linkage_pairs(clips.performer, rng, count=pairs_per_epoch)
        rng.shuffle(pairs)
        for b in range(per_epoch):
            rows = pairs[b * spec.batch_size : (b + 1) * spec.batch_size]
            if len(rows) == 0:
                return
            xa = _augment(crops.batch(rows[:, 0], epoch), spec, g).to(dev)
            xb = _augment(crops.batch(rows[:, 1], epoch + 10_000), spec, g).to(dev)
            yield (xa, xb), torch.from_numpy(rows[:, 2]).float().to(dev)

    acc, seconds = _fit(model, spec, g, per_epoch, batches, F.binary_cross_entropy_with_logits,
                        lambda logits, target: (logits > 0).float() == target, "train linkage evaluator", progress)  # fmt: skip
    return model, {"train_accuracy_last_epoch": acc, "train_seconds": seconds, "train_clips": len(clips)}


@dataclass
class Evaluators:
    """The trained evaluators of one dataset (``gender`` absent where genders are unknown)."""

    models: dict[str, torch.nn.Module]
    facts: dict[str, dict[str, Any]]
    spec: EvaluatorSpec
    device: str = "cpu"

    def __post_init__(self) -> None:
        for m in self.models.values():
            m.to(self.device).eval()

    def _tensor(self, windows: npt.NDArray[np.float32]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).to(self.device)

    @torch.no_grad()
    def logits(
        self, task: Task, windows: npt.NDArray[np.float32], batch: int = 512
    ) -> npt.NDArray[np.float32]:
        """Class scores ``(N, K)`` of a classification task on windows ``(N, 75, 25, 3)``.

        SGN's test-time sampling: the middle frame of each segment, so the answer is a
        function of the windows alone.
        """
        model = self.models[task]
        model.eval()
        out = [
            model(self._tensor(windows[s : s + batch])).cpu().numpy() for s in range(0, len(windows), batch)
        ]
        return np.concatenate(out)

    @torch.no_grad()
    def features(self, windows: npt.NDArray[np.float32], batch: int = 512) -> torch.Tensor:
        """Linkage backbone features ``(N, F)`` of windows (SGN's test-time sampling, as :meth:`logits`)."""
        model = self.models["linkage"]
        assert isinstance(model, SiameseSGN)
        model.eval()
        return torch.cat(
            [model.backbone(self._tensor(windows[s : s + batch])) for s in range(0, len(windows), batch)]
        )

    @torch.no_grad()
    def link(self, fa: torch.Tensor, fb: torch.Tensor) -> npt.NDArray[np.float32]:
        """Linkage logits ``(M,)`` for feature pairs."""
        model = self.models["linkage"]
        assert isinstance(model, SiameseSGN)
        return model.head(torch.cat([(fa - fb).abs(), fa * fb], dim=1)).squeeze(1).cpu().numpy()


def load_or_train(
    clips: ClipSet,
    cache_dir: str | Path,
    spec: EvaluatorSpec | None = None,
    *,
    tasks: tuple[Task, ...] = TASKS,
    retrain: bool = False,
    progress: bool = True,
    announce: Callable[[str], None] = print,
    device: str = "cpu",
) -> Evaluators:
    """The evaluators for training clips ``clips``: from ``cache_dir`` when fresh, else trained and cached.

    ``gender`` is skipped (with a message) when some clip has no gender label.
    """
    spec = spec or EvaluatorSpec()
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(clips)
    want = {"version": EVALUATOR_VERSION, "fingerprint": fp, "spec": spec.to_dict()}
    models: dict[str, torch.nn.Module] = {}
    facts: dict[str, dict[str, Any]] = {}
    for task in tasks:
        if task == "gender" and (clips.gender < 0).any():
            announce(
                "evaluator gender: skipped, the training clips have no gender labels (NTU-60: pass --genders CSV)"
            )
            continue
        meta_path, weights = cache / f"{task}.json", cache / f"{task}.pt"
        reason = None if not retrain else "retraining was asked for"
        meta: dict[str, Any] = {}
        if reason is None:
            if not meta_path.is_file() or not weights.is_file():
                reason = "no cached evaluator"
            else:
                meta = json.loads(meta_path.read_text())
                stale = [k for k in want if meta.get(k) != want[k]]
                if stale:
                    reason = "cached one is stale (" + ", ".join(stale) + " changed)"
        model = _build(task, clips, spec)
        if reason is None:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            model.eval()
            facts[task] = meta.get("facts", {})
            log.info("evaluator %s: cached in %s", task, weights)
        else:
            announce(f"evaluator {task}: {reason}; training it on {len(clips)} clips ...")
            if task == "linkage":
                model, f = train_linkage(clips, spec, progress=progress, device=device)
            else:
                model, f = train_classifier(clips, task, spec, progress=progress, device=device)
            torch.save(model.state_dict(), weights)
            meta_path.write_text(json.dumps({**want, "facts": f}, indent=2))
            facts[task] = f
            announce(f"evaluator {task}: trained in {f['train_seconds']:.0f} s, cached in {weights}")
        models[task] = model
    return Evaluators(models, facts, spec, device)


def _build(task: Task, clips: ClipSet, spec: EvaluatorSpec) -> torch.nn.Module:
    if task == "linkage":
        return SiameseSGN(spec.sgn)
    return SGNClassifier(num_classes(clips, task), spec.sgn)


__all__ = [
    "EVALUATOR_VERSION", "TASKS", "EvaluatorSpec", "Evaluators", "centre_windows", "fingerprint", "labels_of",
    "linkage_pairs", "load_or_train", "num_classes", "rotate_y", "train_classifier", "train_linkage",
]  # fmt: skip
