"""How exactly a BVH export reproduces the motion, read back by an independent reader (bvhio).

    python -m tools.bvh_roundtrip [--ntu-dir ../shared/data/ntu] [--no-anonymized] [--json out/bvh.json]

For every real NTU recording (every person) it writes BVH (``write_bvh_files``, the motion's
own skeleton, centimetres), parses it with bvhio (its own parser and forward kinematics, the
``dev`` extra) and compares the joint positions with the input after the documented transform:

* ``raw``: the Kinect skeleton itself. Kinect's bone lengths change from frame to frame, a BVH
  skeleton's cannot, so this error mixes the bone-length change with the IK's residual;
* ``same bones``: the Kinect skeleton with every bone set to the file's length (directions
  kept): only the IK's residual, which lies at the joints with several children (hips,
  shoulders, hand tip and thumb);
* ``anonymized``: the default anonymizer's output (``--bones dummy``, every frame has the
  dummy's bones), as ``pmr anonymize`` writes it: the case the export is for.

Errors are joint-position distances in millimetres, max and mean over frames and joints, and
the largest angle of the bones whose parent has one child (exact, up to the reader's float32).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pmr_stream.formats.bvh import BvhOptions, from_bvh_axes, write_bvh_files
from pmr_stream.formats.bvh_ik import CHILDREN
from pmr_stream.formats.io import load_recording
from pmr_stream.formats.recording import Recording
from pmr_stream.samples import ntu_sample_files
from pmr_stream.skeleton import NTU25, NTU_JOINT_NAMES, median_bone_lengths, retarget_bones

ONE_CHILD_BONES = [b for b, (_, p) in enumerate(NTU25.bones) if len(CHILDREN[p]) == 1]


def read_positions(path: str) -> npt.NDArray[np.float64]:
    """bvhio's world positions of the 25 joints ``(T, 25, 3)``, Kinect-convention metres."""
    import bvhio

    frames = bvhio.readAsBvh(path).FrameCount
    root = bvhio.readAsHierarchy(path)
    by_name = {j.Name: j for j, _, _ in root.layout()}
    out = np.zeros((frames, NTU25.num_joints, 3))
    for f in range(frames):
        root.loadPose(f)
        for k, name in enumerate(NTU_JOINT_NAMES):
            p = by_name[name].PositionWorld
            out[f, k] = (p.x, p.y, p.z)
    return from_bvh_axes(out, BvhOptions())


def figures(back: npt.NDArray[np.float64], x: npt.NDArray[np.float32]) -> dict[str, float]:
    e = np.linalg.norm(back - x, axis=-1) * 1000.0
    child, parent = [c for c, _ in NTU25.bones], [q for _, q in NTU25.bones]
    va, vb = back[:, child] - back[:, parent], x[:, child].astype(np.float64) - x[:, parent]
    cos = np.sum(va * vb, -1) / (np.linalg.norm(va, axis=-1) * np.linalg.norm(vb, axis=-1))
    ang = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    return {
        "max_mm": float(e.max()),
        "mean_mm": float(e.mean()),
        "one_child_max_deg": float(ang[:, ONE_CHILD_BONES].max()),
    }


def round_trip(rec: Recording, folder: str, stem: str) -> list[tuple[int, npt.NDArray[np.float64]]]:
    """(person, read-back positions) of every present person, only their present frames."""
    out = []
    for w in write_bvh_files(rec, Path(folder) / f"{stem}.bvh"):
        out.append((w.person, read_positions(w.path)[rec.present[:, w.person]]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ntu-dir", default=None, help="folder of .skeleton files (default: the samples)")
    ap.add_argument("--no-anonymized", action="store_true", help="skip the anonymized rows (no model)")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()
    files = ntu_sample_files(args.ntu_dir)
    if not files:
        raise SystemExit("no .skeleton files found (pass --ntu-dir)")
    anonymize: Any = None
    if not args.no_anonymized:
        from pmr_stream.offline import AnonymizeOptions, anonymize_recording, default_window_fn

        fn, model_id = default_window_fn()
        opts = AnonymizeOptions(bone_lengths=tuple(float(b) for b in fn.source.dummy_bone_lengths()))
        anonymize = lambda r: anonymize_recording(r, fn.anonymize, opts, model_id=model_id)  # noqa: E731
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            rec = load_recording(path)
            for p, back in round_trip(rec, tmp, path.stem):
                x = rec.joints[rec.present[:, p], p]
                same = retarget_bones(x, median_bone_lengths(x))
                rows.append({"clip": path.stem, "person": p, "input": "raw", **figures(back, x)})
                rows.append({"clip": path.stem, "person": p, "input": "same bones", **figures(back, same)})
            if anonymize is not None:
                anon = anonymize(rec)
                for p, back in round_trip(anon, tmp, path.stem + "_anon"):
                    x = anon.joints[anon.present[:, p], p]
                    rows.append({"clip": path.stem, "person": p, "input": "anonymized", **figures(back, x)})
    print(json.dumps(rows))
    print(f"{'clip':22} {'p':>2} {'input':11} {'max mm':>8} {'mean mm':>8} {'1-child deg':>11}")
    for r in rows:
        print(
            f"{r['clip']:22} {r['person']:>2} {r['input']:11} {r['max_mm']:8.1f} {r['mean_mm']:8.1f} {r['one_child_max_deg']:11.4f}"
        )
    for kind in ("raw", "same bones", "anonymized"):
        sel = [r for r in rows if r["input"] == kind]
        if sel:
            print(f"{'all':22} {'':>2} {kind:11} {max(r['max_mm'] for r in sel):8.1f} "
                  f"{np.mean([r['mean_mm'] for r in sel]):8.1f} {max(r['one_child_max_deg'] for r in sel):11.4f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
