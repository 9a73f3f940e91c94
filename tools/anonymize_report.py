"""Show that the default model anonymizes: bone lengths become the dummy's, motion stays.

    python -m tools.anonymize_report [--ntu-dir ../shared/data/ntu] [--model-path M] [--dummy D]
                                     [--json out/anonymize_report.json] [--render out/compare.mp4]

For every real NTU recording (every person), it anonymizes offline and reports:
- the mean absolute difference of the 18 trunk-and-limb bone lengths (median over
  frames) of the output to the dummy's and to the original's, in centimetres;
- posture agreement: the mean cosine between the output's and the original's bone
  directions per frame (1 = same posture);
- motion agreement: the correlation of the two clips' movements (root-relative joint
  positions minus their mean over the clip, over all frames, joints and axes), and
  the same against a time-shuffled copy of the original as the floor that unrelated
  motion gives (about 0);
- the hip-centre (SpineBase) distance to the original's, in centimetres.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from pmr_stream.assets import DEFAULT_DUMMY
from pmr_stream.backends.base import load_dummy
from pmr_stream.formats.io import load_recording
from pmr_stream.offline import AnonymizeOptions, anonymize_recording, default_window_fn
from pmr_stream.skeleton import NTU_BODY_BONES, bone_directions, bone_lengths


def movement(x: np.ndarray) -> np.ndarray:
    """Root-relative joint positions minus their mean over the clip, ``(T, 25, 3)``."""
    rel = x - x[:, :1]
    return rel - rel.mean(axis=0, keepdims=True)


def clip_figures(
    orig: np.ndarray, anon: np.ndarray, dummy_lengths: np.ndarray, rng: np.random.Generator
) -> dict[str, float]:
    lo = np.median(bone_lengths(orig), axis=0)[NTU_BODY_BONES]
    la = np.median(bone_lengths(anon), axis=0)[NTU_BODY_BONES]
    ld = dummy_lengths[NTU_BODY_BONES]
    do, da = bone_directions(orig), bone_directions(anon)
    cos = float((do * da).sum(-1)[:, NTU_BODY_BONES].mean())
    mo, ma = movement(orig), movement(anon)
    corr = float(np.corrcoef(mo.ravel(), ma.ravel())[0, 1])
    floor = float(np.corrcoef(mo[rng.permutation(len(mo))].ravel(), ma.ravel())[0, 1])
    return {
        "frames": int(len(orig)),
        "bone_diff_to_dummy_cm": float(np.abs(la - ld).mean() * 100),
        "bone_diff_to_original_cm": float(np.abs(la - lo).mean() * 100),
        "original_diff_to_dummy_cm": float(np.abs(lo - ld).mean() * 100),
        "direction_cosine": cos,
        "motion_correlation": corr,
        "motion_correlation_shuffled": floor,
        "hip_distance_cm": float(np.linalg.norm(anon[:, 0] - orig[:, 0], axis=-1).mean() * 100),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ntu-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "ntu"))
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--dummy", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--render", default=None, help="write an original | anonymized video of the first clip")
    args = ap.parse_args()
    fn, model_id = default_window_fn(args.model_path, args.dummy)
    dummy_lengths = np.median(bone_lengths(load_dummy(args.dummy or DEFAULT_DUMMY)), axis=0)
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    files = sorted(Path(args.ntu_dir).glob("*.skeleton"))
    if not files:
        raise SystemExit(f"no .skeleton files in {args.ntu_dir}")
    for i, f in enumerate(files):
        rec = load_recording(f)
        out = anonymize_recording(
            rec, fn, AnonymizeOptions(bones="model"), model_id=model_id
        )  # the network's own bones
        for p in range(rec.num_persons):
            m = rec.present[:, p]
            row = {
                "clip": f.stem,
                "person": p,
                **clip_figures(rec.joints[m, p], out.joints[m, p], dummy_lengths, rng),
            }
            rows.append(row)
        if i == 0 and args.render:
            from pmr_stream.render import compare_clips, write_video

            frames = compare_clips(rec.joints, out.joints, labels=("original", f"anonymized ({model_id})"),
                                   present_a=rec.present, present_b=out.present)  # fmt: skip
            write_video(frames, args.render, fps=30.0)
            write_video(frames, str(Path(args.render).with_suffix(".png")), fps=30.0)
    keys = ["bone_diff_to_dummy_cm", "bone_diff_to_original_cm", "original_diff_to_dummy_cm", "direction_cosine",
            "motion_correlation", "motion_correlation_shuffled", "hip_distance_cm"]  # fmt: skip
    mean = {k: float(np.mean([float(r[k]) for r in rows])) for k in keys}
    report = {"model": model_id, "clips": rows, "mean": mean}
    print(json.dumps(report, indent=1))
    print()
    print("bone lengths: mean |difference| of the 18 trunk/limb bones; posture: bone-direction cosine;")
    print("motion: correlation of root-relative movement with the original (shuffled: the floor)")
    print(
        f"{'clip':<22}{'P':>2} {'to dummy':>9} {'to orig':>8} {'orig-dummy':>11} {'posture':>8} {'motion':>7} {'shuffled':>9} {'hip':>6}"
    )
    for r in rows + [{"clip": "mean", "person": "", **mean}]:
        print(f"{r['clip']:<22}{r['person']!s:>2} {r['bone_diff_to_dummy_cm']:>8.1f}c {r['bone_diff_to_original_cm']:>7.1f}c "
              f"{r['original_diff_to_dummy_cm']:>10.1f}c {r['direction_cosine']:>8.3f} {r['motion_correlation']:>7.3f} "
              f"{r['motion_correlation_shuffled']:>9.3f} "
              f"{r['hip_distance_cm']:>5.1f}c")  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
