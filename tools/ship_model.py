"""Copy a trained checkpoint's retargeting weights (only what inference needs) into the package.

    python -m tools.ship_model runs/default/final.pt [--output pmr_stream/assets/pmr_default.pt]
                               [--train-seconds S] [--note TEXT] [--half]

Drops the classifiers, Q and optimiser state; keeps the config and the provenance
(adding the training wall time and a note), so the shipped file is a few MB.
``--half`` stores the weights as float16 (half the size; they are loaded back into the
float32 network, relative rounding about 1e-3): used for the DMR baseline, which is
five times the size of PMR and only serves the evaluation.
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
    ap.add_argument("--half", action="store_true", help="store the weights as float16")
    args = ap.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    prov = dict(ckpt.provenance)
    if args.train_seconds is not None:
        prov["train_seconds"] = args.train_seconds
    if args.note:
        prov["note"] = args.note
    prov["shipped_from"] = Path(args.checkpoint).name
    state = ckpt.model_state
    if args.half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        prov["stored_as"] = "float16"
    out = save_checkpoint(args.output, Checkpoint(config=ckpt.config, model_state=state, provenance=prov))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) from {args.checkpoint}")


if __name__ == "__main__":
    main()
