"""``python -m pmr_stream.synth``: write the stand-in dataset."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from pmr_stream.synth.actions import ACTION_NAMES
from pmr_stream.synth.dataset import DEFAULT_STANDIN_PATH, StandinSpec, generate_dataset

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pmr_stream.synth [--out DIR] [--fmt skeleton|npz] ...``: write the stand-in."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m pmr_stream.synth", description="Write the synthetic NTU stand-in."
    )
    ap.add_argument(
        "--out",
        default=None,
        help=f"output directory (or .npz file for --fmt npz); default {DEFAULT_STANDIN_PATH} "
        "(its folder without the suffix for --fmt skeleton)",
    )
    ap.add_argument("--fmt", choices=("skeleton", "npz"), default="npz")
    ap.add_argument("--performers", type=int, default=40)
    ap.add_argument("--replications", type=int, default=2)
    ap.add_argument("--actions", default=",".join(ACTION_NAMES), help="comma-separated action names")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = StandinSpec(
        performers=args.performers, replications=args.replications, seed=args.seed,
        actions=tuple(a.strip() for a in args.actions.split(",") if a.strip()),
    )  # fmt: skip
    t0 = time.perf_counter()
    out = generate_dataset(spec, args.out, fmt=args.fmt, progress=True)
    log.info("wrote %d clips to %s in %.1f s", spec.num_clips, out, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
