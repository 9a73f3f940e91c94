#!/usr/bin/env python3
"""pmr-stream's one-command demo.

    python run_stream.py                      # render the built-in demo recording
    python run_stream.py --input FILE.skeleton --output out/clip.mp4

Until the streaming anonymizer lands, the main job renders the bundled demo
recording (a stand-in clip shipped with the package) to a video and a contact
sheet and says where they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pmr_stream.assets import DEMO_CLIP
from pmr_stream.cli import main as pmr_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(DEMO_CLIP), help="recording to show (default: the built-in demo clip)")
    parser.add_argument("--output", default="out/demo.mp4", help="video to write (.mp4/.gif; default out/demo.mp4)")
    args = parser.parse_args(argv)
    out = Path(args.output)
    rc = pmr_main(["visualize", "--input", args.input, "--output", str(out)])
    if rc == 0:
        sheet = out.with_name(out.stem + "_sheet.png")
        rc = pmr_main(["visualize", "--input", args.input, "--output", str(sheet)])
    if rc == 0:
        print(f"demo done: open {out.resolve()} (video) or {sheet.resolve()} (contact sheet)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
