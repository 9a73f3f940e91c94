"""The paper-layout evaluation, and what every evaluation shares: methods as window
functions, the evaluators' predictions and scores, chance levels.

The privacy/utility evaluation has two kinds of table (written by :mod:`training.report`):

* **Protocol tables** (:mod:`training.protocol_eval`), one per split of :mod:`training.protocols`:
  every anonymizer offline and streaming (:func:`stream_outputs`), fixed and adaptive attackers.
* **The paper-layout table** (:func:`evaluate`, cross-view, fixed evaluators): the methods
  at window level under three dummy policies, as described below.

Protocol of the paper-layout table (see the README's "Evaluation" section):

* Evaluators (SGN action, re-ID, gender; siamese SGN linkage) are trained on the
  original clips of the training split (:mod:`training.evaluators`) and measured on
  the test split. Every method is evaluated on the same input: the centre 75-frame
  window of each test clip, original and anonymized alike (the paper compared 300-frame
  originals with 75-frame anonymized clips).
* Metrics: MSE over every frame, joint and axis (normalised metres; the paper used frame
  0 only); action top-1/top-5; re-ID top-1/top-5; gender accuracy from the gender
  evaluator (the paper's column re-ran re-ID); linkage accuracy: an attacker holding an
  original reference window of a person decides whether an anonymized window is the same
  person, on balanced pairs (every reference clip in one same-person and one
  other-person pair, so 50% is chance exactly).
* Dummy policies: ``constant`` (the shipped dummy, what streaming uses), ``random``
  (another performer's test clip), ``same_action`` (another performer doing the same
  action: what the paper's numbers used).
* Seeds: each seed draws the dummies of the random policies and the linkage pairs; the
  evaluators read each window the way SGN tests (the middle frame of each segment), so
  their answer is a function of the windows and a constant-dummy row varies across seeds
  in its linkage column only. The tables give mean and standard deviation.
* Rows: Original; PMR (the shipped default and any checkpoint given); DMR (the same
  network with embeddings (256, 32), trained without classifiers and Q); FK baseline
  (every bone set to the dummy's length, joint angles kept); and PMR through the
  streaming path (windows made by :class:`pmr_stream.anonymizer.window.WindowStore` as the
  anonymizer service makes them, run through a backend).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import torch
from tqdm.auto import tqdm

from pmr_stream.model.pmr import PMRModel
from pmr_stream.skeleton import C, J, T, median_bone_lengths, pad_to_length, retarget_bones

from .data import ClipSet
from .evaluators import Evaluators, centre_windows, linkage_pairs
from .metrics import (
    binary_accuracy,
    majority_rate,
    mean_std,
    mse,
    topk_accuracy,
)

log = logging.getLogger(__name__)

POLICIES: Final[tuple[str, ...]] = ("constant", "random", "same_action")
METRICS: Final[tuple[str, ...]] = (
    "mse",
    "action_top1",
    "action_top5",
    "reid_top1",
    "reid_top5",
    "gender",
    "linkage",
)

#: ``(windows (N, 75, 25, 3), dummies (N, 75, 25, 3)) -> anonymized (N, 75, 25, 3)``
AnonymizeFn = Callable[[npt.NDArray[np.float32], npt.NDArray[np.float32]], npt.NDArray[np.float32]]


@dataclass
class Method:
    """A row of the table: ``fn`` anonymizes windows with one dummy window per row.

    ``policies``: the dummy policies it is evaluated under; ``kind``: ``pmr``, ``dmr``,
    ``fk``, ``stream`` or ``test``.
    """

    name: str
    kind: str
    fn: AnonymizeFn
    policies: tuple[str, ...] = POLICIES
    source: str = ""


# ----------------------------------------------------------------------------- dummies


def choose_dummies(clips: ClipSet, policy: str, seed: int) -> tuple[npt.NDArray[np.int64] | None, int]:
    """Index ``(N,)`` of each test clip's dummy clip (``None`` for ``constant``), and how many
    clips fell back to a random other performer because nobody else did their action."""
    if policy == "constant":
        return None, 0
    if policy not in POLICIES:
        raise ValueError(f"dummy policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    rng = np.random.default_rng([seed, POLICIES.index(policy)])
    p, a = clips.performer, clips.action
    out = np.empty(len(clips), np.int64)
    fallback = 0
    for i in range(len(clips)):
        cand = np.flatnonzero(p != p[i])
        if policy == "same_action":
            same = cand[a[cand] == a[i]]
            if len(same):
                cand = same
            else:
                fallback += 1
        if len(cand) == 0:
            raise ValueError(
                "dummy policies other than constant need at least two performers in the test split"
            )
        out[i] = cand[rng.integers(len(cand))]
    return out, fallback


# ----------------------------------------------------------------------------- anonymizers


def network_fn(model: PMRModel, batch: int = 256, device: str = "cpu") -> AnonymizeFn:
    """Whole-window cross reconstruction ``D(E_M(window), E_P(dummy))`` with a PMR/DMR network."""
    dev = torch.device(device)
    model = model.to(dev).eval()

    @torch.no_grad()
    def run(windows: npt.NDArray[np.float32], dummies: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = []
        constant = bool(len(dummies)) and bool(np.all(dummies == dummies[:1]))
        code = model.privacy_code(torch.from_numpy(dummies[:1]).to(dev)) if constant else None
        for s in range(0, len(windows), batch):
            x = torch.from_numpy(windows[s : s + batch]).to(dev)
            if code is not None:
                y = model.anonymize_with_code(x, code)
            else:
                y = model.cross_reconstruct(x, torch.from_numpy(dummies[s : s + batch]).to(dev))
            out.append(y.cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    return run


def with_dummy_bones(fn: AnonymizeFn) -> AnonymizeFn:
    """``fn`` followed by the service's default bone step: every bone set to its row's dummy's
    median length (forward kinematics, directions kept)."""

    def run(windows: npt.NDArray[np.float32], dummies: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        lengths = median_bone_lengths(dummies)  # (N, 24)
        return retarget_bones(fn(windows, dummies), lengths[:, None, :])

    return run


def stream_outputs(
    clips: ClipSet,
    backend: Any,
    policy: str = "last",
    chunk: int = 32,
    progress: bool = False,
    bones: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """PMR as the streaming service produces it, at the frames of each clip's centre window.

    Each (padded) clip is pushed frame by frame into a :class:`~pmr_stream.anonymizer.window.WindowStore`
    (start-up padding, per-window normalisation, the window policy), every due window goes
    through ``backend.anonymize`` in batches across clips, and the store turns the results
    into output frames; ``bones`` ``(24,)``: then every bone is set to these lengths, as the
    service does with ``bones="dummy"``. Returns ``(N, 75, 25, 3)``: the output frames at
    the centre window's frames, comparable with :func:`~training.evaluators.centre_windows`.
    """
    from pmr_stream.anonymizer.window import WindowOptions, WindowPolicy, WindowStore

    pol = WindowPolicy.parse(policy)
    out = np.zeros((len(clips), T, J, C), np.float32)
    bar = tqdm(total=len(clips), desc=f"streaming path ({pol.name})", disable=not progress, leave=False)
    for c0 in range(0, len(clips), chunk):
        store = WindowStore(WindowOptions(policy=pol))
        dues = []
        for i in range(c0, min(c0 + chunk, len(clips))):
            x = pad_to_length(clips.clips[i])
            s = (len(x) - T) // 2
            for t in range(min(len(x), s + T + pol.delay)):
                due, _ = store.push(f"clip{i}", 0, t, x[t], (i, t - s), 0)
                if due is not None and t >= s:
                    dues.append(due)
        results: list[npt.NDArray[np.float32]] = []
        for b in range(0, len(dues), 512):
            results.extend(backend.anonymize(np.stack([d.window for d in dues[b : b + 512]])))
        done = []
        for due, y in zip(dues, results, strict=True):
            done += store.resolve(due, y)
        for key in list(store.tracks):
            done += store.flush(key)
        for (i, k), frame in done:
            if 0 <= k < T:
                if frame is None:
                    raise RuntimeError(
                        f"streaming path: clip {clips.names[i]} frame {k} could not be anonymized"
                    )
                out[i, k] = frame if bones is None else retarget_bones(frame, bones)
        bar.update(min(chunk, len(clips) - c0))
    bar.close()
    return out


# ----------------------------------------------------------------------------- metrics of one set


@dataclass
class Predictions:
    """What the evaluators say about one set of windows (a function of the windows alone)."""

    logits: dict[str, npt.NDArray[np.float32]]
    features: torch.Tensor | None


def predict(ev: Evaluators, windows: npt.NDArray[np.float32]) -> Predictions:
    """Run every evaluator on windows ``(N, 75, 25, 3)``."""
    tasks: tuple[Literal["action", "reid", "gender"], ...] = ("action", "reid", "gender")
    logits: dict[str, npt.NDArray[np.float32]] = {t: ev.logits(t, windows) for t in tasks if t in ev.models}
    return Predictions(logits, ev.features(windows) if "linkage" in ev.models else None)


def score(
    ev: Evaluators,
    clips: ClipSet,
    preds: Predictions,
    pairs: npt.NDArray[np.int64],
    reference: Predictions,
    mse_value: float,
) -> dict[str, float]:
    """Every metric of one anonymized set (fractions; ``mse`` in m^2, NaN for the Original row).

    ``reference``: the predictions on the original windows (the linkage attacker's
    references are original recordings); ``pairs`` ``(M, 3)`` from :func:`linkage_pairs`.
    """
    m: dict[str, float] = {"mse": mse_value}
    if "action" in preds.logits:
        lg = preds.logits["action"]
        m["action_top1"] = topk_accuracy(lg, clips.action, 1)
        m["action_top5"] = topk_accuracy(lg, clips.action, min(5, lg.shape[1]))
    if "reid" in preds.logits:
        lg = preds.logits["reid"]
        m["reid_top1"] = topk_accuracy(lg, clips.performer, 1)
        m["reid_top5"] = topk_accuracy(lg, clips.performer, min(5, lg.shape[1]))
    if "gender" in preds.logits and (clips.gender >= 0).all():
        m["gender"] = topk_accuracy(preds.logits["gender"], clips.gender, 1)
    if preds.features is not None and reference.features is not None and len(pairs):
        scores = ev.link(reference.features[pairs[:, 0]], preds.features[pairs[:, 1]])
        m["linkage"] = binary_accuracy(scores, pairs[:, 2])
    return m


# ----------------------------------------------------------------------------- the run


@dataclass
class Row:
    method: str
    policy: str
    kind: str
    per_seed: list[dict[str, float]] = field(default_factory=list)
    source: str = ""

    def summary(self) -> dict[str, tuple[float, float]]:
        keys = [k for k in METRICS if any(k in s for s in self.per_seed)]
        return {k: mean_std([s[k] for s in self.per_seed if k in s]) for k in keys}


@dataclass
class EvalResult:
    rows: list[Row]
    chance: dict[str, float]
    seeds: list[int]
    seconds: float
    info: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds, "seconds": self.seconds, "chance": self.chance, "info": self.info,
            "rows": [{"method": r.method, "policy": r.policy, "kind": r.kind, "source": r.source, "per_seed": r.per_seed,
                      "mean": {k: v[0] for k, v in r.summary().items()},
                      "std": {k: v[1] for k, v in r.summary().items()}} for r in self.rows],
        }  # fmt: skip


def chance_levels(clips: ClipSet, ev: Evaluators) -> dict[str, float]:
    """What guessing scores: uniform over classes for action/re-ID, majority for gender, 50% linkage."""
    out = {"action_top1": 1 / clips.num_actions, "action_top5": min(5, clips.num_actions) / clips.num_actions,
           "reid_top1": 1 / clips.num_performers, "reid_top5": min(5, clips.num_performers) / clips.num_performers,
           "linkage": 0.5}  # fmt: skip
    if "gender" in ev.models and (clips.gender >= 0).all():
        out["gender"] = majority_rate(clips.gender)
    return out


def evaluate(
    ev: Evaluators,
    test: ClipSet,
    methods: list[Method],
    dummy: npt.NDArray[np.float32],
    seeds: list[int],
    *,
    progress: bool = True,
    info: dict[str, Any] | None = None,
) -> EvalResult:
    """Run the protocol: every method under each of its policies, for every seed.

    ``dummy``: the constant policy's dummy window ``(75, 25, 3)``. Outputs that do not
    depend on the seed (the constant policy, the streaming path) are computed once.
    """
    t0 = time.perf_counter()
    original = centre_windows(test)
    constant = np.broadcast_to(np.asarray(dummy, np.float32), original.shape)
    rows: dict[tuple[str, str], Row] = {("Original", "-"): Row("Original", "-", "original")}
    for m in methods:
        for pol in m.policies:
            rows[(m.name, pol)] = Row(m.name, pol, m.kind, source=m.source)
    steps = len(seeds) * len(rows)
    bar = tqdm(total=steps, desc="evaluating", disable=not progress, dynamic_ncols=True)
    # outputs that do not depend on the seed (the constant dummy, the streaming row) and
    # what the evaluators say about them are computed once
    fixed: dict[tuple[str, str], tuple[Predictions, float]] = {}
    fallbacks: dict[str, int] = {}
    reference = predict(ev, original)
    for seed in seeds:
        pairs = (
            linkage_pairs(test.performer, np.random.default_rng([seed, 99]))
            if "linkage" in ev.models
            else np.zeros((0, 3), np.int64)
        )
        rows[("Original", "-")].per_seed.append(score(ev, test, reference, pairs, reference, float("nan")))
        bar.update(1)
        dummies_by_policy: dict[str, npt.NDArray[np.float32]] = {}
        for m in methods:
            for pol in m.policies:
                bar.set_postfix_str(f"seed {seed} {m.name} / {pol}")
                if (m.name, pol) in fixed:
                    preds, err = fixed[(m.name, pol)]
                else:
                    if pol not in dummies_by_policy:
                        idx, fb = choose_dummies(test, pol, seed)
                        fallbacks[pol] = fallbacks.get(pol, 0) + fb
                        dummies_by_policy[pol] = (
                            np.ascontiguousarray(constant) if idx is None else original[idx]
                        )
                    anon = np.asarray(m.fn(original, dummies_by_policy[pol]), dtype=np.float32)
                    if anon.shape != original.shape:
                        raise ValueError(
                            f"{m.name}: anonymizer returned {anon.shape}, expected {original.shape}"
                        )
                    preds, err = predict(ev, anon), mse(anon, original)
                    if pol == "constant":
                        fixed[(m.name, pol)] = (preds, err)
                rows[(m.name, pol)].per_seed.append(score(ev, test, preds, pairs, reference, err))
                bar.update(1)
    bar.close()
    info = dict(info or {})
    info["same_action_fallbacks_per_seed"] = fallbacks.get("same_action", 0) / max(len(seeds), 1)
    info["test_clips"] = len(test)
    return EvalResult(
        list(rows.values()), chance_levels(test, ev), list(seeds), time.perf_counter() - t0, info
    )


__all__ = [
    "AnonymizeFn", "EvalResult", "METRICS", "Method", "POLICIES", "Predictions", "Row", "chance_levels",
    "choose_dummies", "evaluate", "network_fn", "predict", "score", "stream_outputs", "with_dummy_bones",
]  # fmt: skip
