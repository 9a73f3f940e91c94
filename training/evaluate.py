"""The privacy/utility evaluation: fixed and adaptive attackers on two splits, and the paper's table.

Two kinds of table:

* **Protocol tables** (:func:`evaluate_protocol`), one per split of :mod:`training.protocols`
  (``cross-take``: no shared performance; ``cross-view``: the paper's). Every method is an
  :class:`Anonymizer` with the constant dummy, measured through the paths users get:
  offline (each whole test clip through ``pmr anonymize``'s
  :func:`~pmr_stream.offline.anonymize_track`, default options, then the centre
  window's frames) and streaming (:func:`stream_outputs`). Columns: fidelity (MPJPE
  against the FK retarget of the original onto the dummy's bones, bone-length error,
  jitter; mm) and, side by side, what the fixed evaluators (trained on originals) and the
  adaptive attackers (:mod:`training.adaptive`: warm-started from them, fine-tuned on the
  method's own anonymized training clips) measure: action, re-ID, gender, linkage.
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
  anonymizer service makes them, run through an engine backend).
"""

from __future__ import annotations

import json
import logging
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import torch
from tqdm.auto import tqdm

from pmr_stream.model.pmr import PMRModel
from pmr_stream.skeleton import C, J, T, median_bone_lengths, pad_to_length, retarget_bones

from .adaptive import AdaptiveSpec
from .data import ClipSet
from .evaluators import Evaluators, centre_windows, linkage_pairs
from .metrics import (
    binary_accuracy,
    bone_length_error_mm,
    fk_target,
    jitter_mm,
    majority_rate,
    mean_std,
    mpjpe_mm,
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


# ----------------------------------------------------------------------------- output

_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("MSE", "mse"), ("AR top-1", "action_top1"), ("AR top-5", "action_top5"), ("Re-ID top-1", "reid_top1"),
    ("Re-ID top-5", "reid_top5"), ("Gender", "gender"), ("Linkage", "linkage"),
)  # fmt: skip
POLICY_LABEL: Final[dict[str, str]] = {
    "-": "-",
    "constant": "constant",
    "random": "random other",
    "same_action": "same action",
}


def _cell(key: str, mean: float, std: float) -> str:
    if np.isnan(mean):
        return "-"
    if key == "mse":
        return f"{mean:.4f} ± {std:.4f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def markdown_table(result: EvalResult, title: str = "") -> str:
    """The table in the paper's layout (percent; MSE in m^2), one row per method and dummy policy."""
    lines = [f"**{title}**", ""] if title else []
    lines.append("| Method | Dummy | " + " | ".join(c for c, _ in _COLUMNS) + " |")
    lines.append("|---|---|" + "---|" * len(_COLUMNS))
    for r in result.rows:
        s = r.summary()
        cells = [_cell(k, *s[k]) if k in s else "n/a" for _, k in _COLUMNS]
        lines.append(f"| {r.method} | {POLICY_LABEL.get(r.policy, r.policy)} | " + " | ".join(cells) + " |")
    ch = result.chance
    lines.append(
        "| *chance* | - | - | "
        + " | ".join(f"{100 * ch[k]:.1f}" if k in ch else "n/a" for _, k in _COLUMNS[1:])
        + " |"
    )
    lines.append("")
    lines.append(f"Mean ± standard deviation over {len(result.seeds)} seeds ({', '.join(map(str, result.seeds))}); "
                 f"{result.info.get('test_clips', '?')} test clips; accuracies in percent, MSE in m² "
                 "(normalised coordinates, every frame and joint).")  # fmt: skip
    return "\n".join(lines)


# ----------------------------------------------------------------------------- protocols: fixed and adaptive attackers

#: Published NTU-60 points (action top-1 %, re-ID top-1 %), all measured with attackers trained
#: on originals only; ranges are given as their midpoints (see issue 13's table).
ANCHORS: Final[tuple[tuple[str, float, float], ...]] = (
    ("raw", (82.2 + 89.1) / 2, (75.4 + 87.8) / 2),
    ("PMR", 35.7, 7.8),
    ("DisentangledTMR", 75.8, 18.1),
    ("MIRAGE", 89.0, 35.6),
    ("Moon et al.", (0.8 + 2.6) / 2, (3.0 + 9.1) / 2),
)
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
    ``stream``: a factory of the engine backend for a streaming-path row (``None``: no such
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


# ----------------------------------------------------------------------------- output

_PCOLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("AR top-1", "action_top1"), ("Re-ID top-1", "reid_top1"), ("Gender", "gender"), ("Linkage", "linkage"),
)  # fmt: skip


def _pct(s: dict[str, tuple[float, float]], key: str) -> str:
    if key not in s or np.isnan(s[key][0]):
        return "n/a"
    m, sd = s[key]
    return f"{100 * m:.1f}" if sd == 0 else f"{100 * m:.1f} ± {100 * sd:.1f}"


def protocol_table(result: ProtocolResult, title: str = "") -> str:
    """The fixed/adaptive table of one protocol (markdown): fidelity in mm, accuracies in percent."""
    head = ["Method", "MPJPE mm", "Bone err mm", "Jitter mm/f²"]
    for label, _ in _PCOLUMNS:
        head += [f"{label} fixed", f"{label} adaptive"]
    head.append("Attacker cost s")
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in result.rows:
        fx, ad = r.summary("fixed"), r.summary("adaptive")
        cells = [r.method] + [f"{r.fidelity[k]:.1f}" if k in r.fidelity else "-" for k in FIDELITY]
        for _, k in _PCOLUMNS:
            cells += [_pct(fx, k), _pct(ad, k) if r.adaptive else "-"]
        cells.append("= fixed" if r.path == "-" else "(offline's)" if r.path == "streaming" and r.adaptive else
                     f"{r.attacker_seconds:.0f}" if r.attacker_seconds is not None else "-")  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    ch = result.chance
    chance = ["*chance / majority*", "-", "-", "-"]
    for _, k in _PCOLUMNS:
        v = f"{100 * ch[k]:.1f}" if k in ch else "n/a"
        chance += [v, v]
    lines.append("| " + " | ".join(chance + ["-"]) + " |")
    orig = next((r for r in result.rows if r.path == "-"), None)
    info = result.info
    lines.append("")
    note = (f"{result.protocol}: {result.description}. {info.get('test_clips', '?')} test clips. Fixed: evaluators "
            f"trained on the original training clips; adaptive: warm-started from them and fine-tuned on the "
            f"method's own anonymized training clips ({info.get('attacker_train_clips', '?')} clips, "
            f"{(info.get('adaptive') or {}).get('epochs', '?')} epochs); adaptive linkage anonymizes both windows "
            "of a pair. The Original row's adaptive figures are the fixed ones (nothing to retrain on); a "
            "streaming row reuses its offline row's attackers. MPJPE against the FK retarget of the original "
            "onto the dummy's bones; bone error against the dummy's median bones; jitter: mean norm of the "
            "second difference over the 75 frames")  # fmt: skip
    if orig is not None and "target_jitter_mm" in orig.fidelity:
        note += f" (the FK target's own jitter: {orig.fidelity['target_jitter_mm']:.1f} mm/frame²)"
    note += (f". Mean ± std over {len(result.seeds)} seeds (they draw the linkage pairs; a figure without ± "
             "does not depend on the seed). Attacker cost: anonymizing the training clips plus fine-tuning the "
             "four attackers, seconds on this host.")  # fmt: skip
    if not any(r.adaptive for r in result.rows if r.path != "-"):
        note += " Adaptive attackers were not trained (--no-adaptive)."
    lines.append(note)
    return "\n".join(lines)


def plot_privacy_utility(result: ProtocolResult, path: str | Path, title: str = "") -> Path:
    """The privacy/utility chart: x = action top-1 by the fixed recogniser, y = re-ID top-1 by the
    retrained (adaptive) attacker (the fixed one where none was trained), one point per row of
    ``result``; the published NTU-60 anchors as hollow grey markers; chance lines dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    cmap = plt.get_cmap("tab10")
    markers = {"-": "*", "offline": "o", "streaming": "s"}
    for i, r in enumerate(result.rows):
        fx = r.summary("fixed")
        ad = r.summary("adaptive") if r.adaptive else fx
        if "action_top1" not in fx or "reid_top1" not in ad:
            continue
        (x, xs), (y, ys) = fx["action_top1"], ad["reid_top1"]
        ax.errorbar(100 * x, 100 * y, xerr=100 * xs, yerr=100 * ys, fmt=markers.get(r.path, "o"), color=cmap(i % 10),
                    markersize=12 if r.path == "-" else 8, capsize=3, label=r.method)  # fmt: skip
    for j, (name, ar, reid) in enumerate(ANCHORS):
        ax.plot(ar, reid, "o", mfc="none", mec="grey", ms=9, mew=1.5,
                label="published NTU-60, fixed attackers" if j == 0 else None)  # fmt: skip
        ax.annotate(name, (ar, reid), textcoords="offset points", xytext=(6, 4), color="grey", fontsize=8)
    ch = result.chance
    if "reid_top1" in ch:
        ax.axhline(100 * ch["reid_top1"], color="grey", ls="--", lw=1)
    if "action_top1" in ch:
        ax.axvline(100 * ch["action_top1"], color="grey", ls="--", lw=1)
        ax.text(
            100 * ch["action_top1"],
            100 * ch.get("reid_top1", 0),
            " chance",
            color="grey",
            va="bottom",
            fontsize=8,
        )
    ax.set_xlabel("action recognition top-1 (%), recogniser trained on originals  → more utility")
    ax.set_ylabel("re-identification top-1 (%), attacker retrained on the output  → less privacy")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(textwrap.fill(title or f"privacy / utility ({result.protocol})", 90), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", framealpha=0.9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def report_markdown(protocols: list[ProtocolResult], paper: EvalResult | None, title: str) -> str:
    """The whole report: one fixed/adaptive table per protocol, then the cross-view paper-layout table."""
    parts = []
    for p in protocols:
        parts.append(protocol_table(p, f"{title}: {p.protocol}, fixed and adaptive attackers"))
    if paper is not None:
        parts.append(
            markdown_table(paper, f"{title}: cross-view, the paper's layout (fixed evaluators, window level)")
        )
    return "\n\n".join(parts)


def write_outputs(
    out_dir: str | Path, title: str, protocols: list[ProtocolResult], paper: EvalResult | None = None,
    info: dict[str, Any] | None = None,
) -> dict[str, Path]:  # fmt: skip
    """``eval.md``, ``eval.json`` and ONE ``privacy_utility.png`` (of cross-take when it was run,
    else of the first protocol) in ``out_dir``."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    md = d / "eval.md"
    md.write_text(report_markdown(protocols, paper, title) + "\n")
    js = d / "eval.json"
    doc = {"title": title, "info": info or {}, "protocols": {p.protocol: p.to_json() for p in protocols},
           "paper_table": paper.to_json() if paper is not None else None,
           "anchors": [{"method": n, "action_top1": a, "reid_top1": r, "note": "published NTU-60, fixed attackers"}
                       for n, a, r in ANCHORS]}  # fmt: skip
    js.write_text(json.dumps(doc, indent=2, default=float))
    paths = {"markdown": md, "json": js}
    chart = next((p for p in protocols if p.protocol == "cross-take"), protocols[0] if protocols else None)
    if chart is not None:
        paths["chart"] = plot_privacy_utility(chart, d / "privacy_utility.png",
                                              f"{title}: {chart.protocol}; x: fixed recogniser, y: retrained attacker")  # fmt: skip
    return paths


__all__ = [
    "ANCHORS", "Anonymizer", "AnonymizeFn", "EvalResult", "METRICS", "Method", "POLICIES", "ProtocolResult", "ProtocolRow",
    "Row", "choose_dummies", "chance_levels", "evaluate", "evaluate_protocol", "fidelity", "markdown_table", "network_fn",
    "offline_windows", "Predictions", "plot_privacy_utility", "predict", "protocol_table", "report_markdown", "score",
    "stream_outputs", "with_dummy_bones", "write_outputs",
]  # fmt: skip
