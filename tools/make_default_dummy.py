"""Make the default dummy ``pmr_stream/assets/dummy.npz``.

    python -m tools.make_default_dummy [--seed 0]

The dummy is the stand-in performer (default cast, seed 0) whose body differs most
from the cast's average (largest distance of the z-scored bone lengths), standing
in a neutral posture with small idle motion, 90 frames, camera 1, no sensor noise.
Everything that anonymizes transfers motion onto this body unless told otherwise.
"""

from __future__ import annotations

import argparse

import numpy as np

from pmr_stream.assets import DEFAULT_DUMMY
from pmr_stream.formats.recording import Recording
from pmr_stream.synth import (
    camera_pose,
    idle_motion,
    make_performers,
    performer_placement,
    pose_body,
    posture_motion,
)
from pmr_stream.synth.kinematics import _standing_feet

FRAMES = 90


def most_distinct(seed: int = 0) -> tuple[int, float]:
    """(1-based performer id, z-scored bone-length distance from the cast mean)."""
    cast = make_performers(40, seed)
    bones = np.stack([p.bones() for p in cast])  # (40, 24)
    z = (bones - bones.mean(0)) / bones.std(0)
    d = np.sqrt((z**2).mean(axis=1))
    i = int(np.argmax(d))
    return cast[i].id, float(d[i])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", default=str(DEFAULT_DUMMY))
    args = ap.parse_args()
    pid, dist = most_distinct(args.seed)
    performer = make_performers(40, args.seed)[pid - 1]
    t = np.arange(FRAMES) / 30.0
    motion = posture_motion(performer.style, FRAMES) + idle_motion(performer.style, t, 0.0)
    body = pose_body(motion, performer.bones(), _standing_feet(performer.bones(), performer.style))
    cam = camera_pose(1, seed=args.seed)
    joints = cam.world_to_camera(performer_placement(pid, 1, seed=args.seed).body_to_world(body))
    bones = performer.bones()
    rec = Recording.from_clip(
        joints.astype(np.float32)[:, None], fps=30.0,
        metadata={"source": "pmr-stream stand-in generator", "performer": pid, "sex": performer.sex,
                  "height_m": round(float(performer.height_m), 3), "seed": args.seed,
                  "distance_from_average_z": round(dist, 3), "bone_lengths_m": [round(float(b), 4) for b in bones]},
    )  # fmt: skip
    rec.save(args.output)
    print(f"wrote {args.output}: performer P{pid:03d} ({performer.sex}, {performer.height_m:.2f} m), "
          f"z-scored bone distance from the average {dist:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
