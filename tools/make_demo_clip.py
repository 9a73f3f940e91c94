"""Regenerate the built-in demo recording ``pmr_stream/assets/demo_clip.npz``.

    python -m tools.make_demo_clip [--seconds 12] [--seed 7]

One stand-in performer (from the default cast, seed 0) chains a few whole-body
actions in front of camera 1, at 30 fps, written in our recording format.
"""

from __future__ import annotations

import argparse

import numpy as np

from pmr_stream.assets import DEMO_CLIP
from pmr_stream.formats.recording import Recording
from pmr_stream.synth import SyntheticStream, make_performers

ACTIONS = ("wave", "squat", "punch", "raise_both_arms", "walk_in_place", "bow")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--performer", type=int, default=5, help="1-based performer of the default cast")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--output", default=str(DEMO_CLIP))
    args = ap.parse_args()
    performer = make_performers(40, 0)[args.performer - 1]
    stream = SyntheticStream(performer, ACTIONS, seed=args.seed, camera=1)
    n = int(round(args.seconds * stream.fps))
    frames, conf = [], []
    for _ in range(n):
        frames.append(next(stream))
        conf.append(stream.last_confidence.copy())
    joints = np.stack(frames)[:, None]  # (T, 1, 25, 3)
    rec = Recording.from_clip(
        joints, fps=stream.fps, confidence=np.stack(conf)[:, None],
        metadata={"source": "pmr-stream stand-in generator", "performer": performer.id,
                  "actions": list(ACTIONS), "seed": args.seed, "camera": 1},
    )  # fmt: skip
    rec.save(args.output)
    print(f"wrote {args.output}: {n} frames, performer P{performer.id:03d}, actions {', '.join(ACTIONS)}")


if __name__ == "__main__":
    main()
