"""Copy a trained checkpoint's retargeting weights (only what inference needs) into the package.

    python -m tools.ship_model runs/pmr_standin/best.pt [--output pmr_stream/assets/pmr_standin.pt]
                               [--train-seconds S] [--note TEXT]

Drops the classifiers, Q and optimiser state; keeps the config and the provenance
(adding the training wall time and a note), so the shipped file is a few MB.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pmr_stream.assets import DEFAULT_MODEL
from pmr_stream.model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--output", default=str(DEFAULT_MODEL))
    ap.add_argument("--train-seconds", type=float, default=None, help="training wall time to record")
    ap.add_argument("--note", default=None)
    args = ap.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    prov = dict(ckpt.provenance)
    if args.train_seconds is not None:
        prov["train_seconds"] = args.train_seconds
    if args.note:
        prov["note"] = args.note
    prov["shipped_from"] = Path(args.checkpoint).name
    out = save_checkpoint(args.output, Checkpoint(config=ckpt.config, model_state=ckpt.model_state, provenance=prov))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) from {args.checkpoint}")


if __name__ == "__main__":
    main()
