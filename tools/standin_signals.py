"""Show that a skeleton dataset carries both signals PMR is about: who and what.

(a) *Identity attack*: per clip the mean over frames of the 24 bone lengths;
    a nearest-neighbour match of every test clip (camera 1) against the
    training clips (cameras 2 and 3) re-identifies the performer.
(b) *Action*: a linear (ridge) classifier on pose features normalised for body
    size and view -- per-frame unit bone directions after turning the first
    frame to face the camera, pooled over time (mean, std, min, max and the
    means of three temporal thirds) -- trained on cameras 2, 3 and tested on
    camera 1.

In NTU (and the stand-in) the three cameras film the same performance, so the
cross-view test clips are new views of training takes. As a harder check the
tool also reports the action classifier cross-subject (NTU's training
performers against the others).

Run ``python -m tools.standin_signals`` to generate the default stand-in in
memory (``--performers`` etc. to change it), or ``--data PATH`` for a stand-in
``.npz``, a directory of stand-in ``.skeleton`` files (with ``labels.json``) or
a directory of real NTU-60 ``.skeleton`` files (``--dataset ntu60 --genders
CSV``). Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import (
    CROSS_VIEW_TEST_CAMERAS,
    CROSS_VIEW_TRAIN_CAMERAS,
    bone_directions,
    bone_lengths,
    view_rotation,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: NTU RGB+D's cross-subject training performers (1-based).
NTU_TRAIN_SUBJECTS: tuple[int, ...] = (
    1,
    2,
    4,
    5,
    8,
    9,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    25,
    27,
    28,
    31,
    34,
    35,
    38,
)


def mean_bone_lengths(clip: npt.ArrayLike) -> FloatArray:
    """Mean over frames of the 24 bone lengths ``(24,)`` metres of a clip ``(T, 25, 3)``."""
    return bone_lengths(np.asarray(clip, dtype=np.float32)).astype(np.float64).mean(axis=0)


def action_features(clip: npt.ArrayLike) -> FloatArray:
    """Size- and view-normalised pose features ``(24 * 3 * 7,)`` of a clip ``(T, 25, 3)``.

    The clip is turned about the vertical axis so that its first frame faces
    the camera; the per-frame unit bone vectors ``(T, 24, 3)`` are pooled over
    time: mean, std, min, max, and the means of the first, middle and last third.
    """
    x = np.asarray(clip, dtype=np.float64)
    x = x @ view_rotation(x[0]).T
    d = bone_directions(x).reshape(len(x), -1).astype(np.float64)  # (T, 72)
    thirds = np.array_split(d, 3)
    parts = [d.mean(0), d.std(0), d.min(0), d.max(0)] + [t.mean(0) for t in thirds]
    return np.concatenate(parts)


def reid_accuracy(
    features: npt.ArrayLike, performer: npt.ArrayLike, gallery: npt.ArrayLike, probe: npt.ArrayLike,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:  # fmt: skip
    """Nearest-neighbour re-identification accuracy (top-k over performers).

    Each probe's performers are ranked by the distance to their nearest gallery
    clip (features standardised on the gallery). Returns ``{"top1": ..., ...}``
    in [0, 1].
    """
    f = np.asarray(features, dtype=np.float64)
    perf = np.asarray(performer)
    g, p = np.asarray(gallery, bool), np.asarray(probe, bool)
    mu, sd = f[g].mean(0), f[g].std(0) + 1e-9
    fg, fp = (f[g] - mu) / sd, (f[p] - mu) / sd
    d = ((fp[:, None, :] - fg[None, :, :]) ** 2).sum(-1)  # (probes, gallery)
    ids = np.unique(perf[g])
    # distance of each probe to each performer's nearest gallery clip
    per_id = np.stack([d[:, perf[g] == i].min(axis=1) for i in ids], axis=1)  # (probes, ids)
    order = ids[np.argsort(per_id, axis=1)]
    truth = perf[p]
    return {f"top{k}": float(np.mean([t in o[:k] for t, o in zip(truth, order, strict=True)])) for k in ks}


def ridge_classifier_accuracy(
    features: npt.ArrayLike, labels: npt.ArrayLike, train: npt.ArrayLike, test: npt.ArrayLike,
    num_classes: int, l2: float = 1.0,
) -> dict[str, float]:  # fmt: skip
    """Top-1/top-3 accuracy of a one-vs-all ridge regression classifier (closed form)."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    tr, te = np.asarray(train, bool), np.asarray(test, bool)
    mu, sd = f[tr].mean(0), f[tr].std(0) + 1e-6
    xtr = np.hstack([(f[tr] - mu) / sd, np.ones((tr.sum(), 1))])
    xte = np.hstack([(f[te] - mu) / sd, np.ones((te.sum(), 1))])
    target = np.eye(num_classes)[y[tr]]
    w = np.linalg.solve(xtr.T @ xtr + l2 * np.eye(xtr.shape[1]), xtr.T @ target)
    scores = xte @ w
    order = np.argsort(-scores, axis=1)
    truth = y[te]
    return {
        "top1": float(np.mean(order[:, 0] == truth)),
        "top3": float(np.mean([t in o[:3] for t, o in zip(truth, order, strict=True)])),
    }


@dataclass(frozen=True)
class Signals:
    """Both figures and their chance levels (fractions in [0, 1])."""

    reid_top1: float
    reid_top5: float
    reid_chance: float
    action_top1: float
    action_top3: float
    action_chance: float
    num_performers: int
    num_actions: int
    num_gallery: int
    num_probes: int
    action_top1_cross_subject: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def measure_signals(
    clips: Sequence[npt.ArrayLike],
    action: npt.ArrayLike,
    performer: npt.ArrayLike,
    camera: npt.ArrayLike,
    num_actions: int,
    *,
    train_cameras: Sequence[int] = CROSS_VIEW_TRAIN_CAMERAS,
    test_cameras: Sequence[int] = CROSS_VIEW_TEST_CAMERAS,
) -> Signals:
    """Run the identity attack and the action classifier on clips ``(T_i, 25, 3)``."""
    cam = np.asarray(camera)
    train = np.isin(cam, train_cameras)
    test = np.isin(cam, test_cameras)
    if not train.any() or not test.any():
        raise ValueError("need clips from both the training and the test cameras")
    bones = np.stack([mean_bone_lengths(c) for c in clips])
    reid = reid_accuracy(bones, performer, train, test)
    feats = np.stack([action_features(c) for c in clips])
    act = ridge_classifier_accuracy(feats, action, train, test, num_actions)
    n_perf = len(np.unique(np.asarray(performer)[train]))
    xsub_train = np.isin(np.asarray(performer) + 1, NTU_TRAIN_SUBJECTS)
    xsub = None
    if xsub_train.any() and (~xsub_train).any():
        xsub = ridge_classifier_accuracy(feats, action, xsub_train, ~xsub_train, num_actions)["top1"]
    return Signals(
        reid_top1=reid["top1"], reid_top5=reid["top5"], reid_chance=1.0 / n_perf,
        action_top1=act["top1"], action_top3=act["top3"], action_chance=1.0 / num_actions,
        num_performers=n_perf, num_actions=num_actions, num_gallery=int(train.sum()), num_probes=int(test.sum()),
        action_top1_cross_subject=xsub,
    )  # fmt: skip


def _table(sig: Signals, title: str) -> str:
    rows = [
        ("identity attack: NN on mean bone lengths", sig.reid_top1, sig.reid_top5, "top-5", sig.reid_chance,
         f"{sig.num_performers} performers"),
        ("action: ridge on bone directions", sig.action_top1, sig.action_top3, "top-3", sig.action_chance,
         f"{sig.num_actions} actions"),
    ]  # fmt: skip
    lines = [title, f"{'signal':44} {'top-1':>7} {'top-k':>12} {'chance':>7}  classes", "-" * 86]
    for name, t1, tk, kname, chance, classes in rows:
        lines.append(
            f"{name:44} {100 * t1:6.1f}% {kname:>5} {100 * tk:5.1f}% {100 * chance:6.1f}%  {classes}"
        )
    lines.append(
        f"(gallery/train: {sig.num_gallery} clips from cameras 2, 3; probes/test: {sig.num_probes} clips from camera 1)"
    )
    if sig.action_top1_cross_subject is not None:
        lines.append(
            f"action top-1 cross-subject (NTU's training performers vs the others, all cameras): "
            f"{100 * sig.action_top1_cross_subject:.1f}%"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.standin_signals", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", help="stand-in .npz, a directory of .skeleton files; default: generate in memory"
    )
    ap.add_argument("--dataset", choices=("standin", "ntu60"), default="standin", help="what --data holds")
    ap.add_argument("--genders", help="NTU-60 only: CSV of performer genders (see training.data)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated stand-in")
    ap.add_argument("--performers", type=int, default=40, help="performers of the generated stand-in")
    ap.add_argument("--replications", type=int, default=2, help="replications of the generated stand-in")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    if args.data is None:
        from pmr_stream.synth import StandinSpec, generate_standin

        spec = StandinSpec(performers=args.performers, replications=args.replications, seed=args.seed)
        data = generate_standin(spec, progress=True)
        clips = [data.clip(i) for i in range(len(data))]
        action, performer, camera = data.action, data.performer, data.camera
        num_actions = len(data.action_names)
        source = f"stand-in generated in memory (seed {args.seed}, {len(data)} clips)"
    else:
        from pmr_training.data import DataConfig, load_clips

        cs = load_clips(DataConfig(dataset=args.dataset, path=args.data, split="all", genders=args.genders))
        clips, action, performer, camera = cs.clips, cs.action, cs.performer, cs.camera
        num_actions = cs.num_actions
        source = f"{args.data} ({len(clips)} clips)"
    sig = measure_signals(clips, action, performer, camera, num_actions)
    print(_table(sig, f"Signals in {source}:"))
    result = {"source": source, **sig.to_dict(), "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
