"""Flags and output helpers shared by the ``pmr`` command groups."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from pmr_stream.formats.io import FORMATS, OUTPUT_FORMATS

if TYPE_CHECKING:  # the socket and drawing stacks are imported lazily by the commands that need them
    from pmr_stream.render import RenderOptions

#: The recording formats a file command reads and writes.
FORMAT_CHOICES = FORMATS
#: The formats a file command writes (also BVH, written only).
OUTPUT_FORMAT_CHOICES = OUTPUT_FORMATS


def add_render_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rendering")
    g.add_argument("--width", type=int, default=640, help="frame width in pixels (default 640)")
    g.add_argument("--height", type=int, default=480, help="frame height in pixels (default 480)")
    g.add_argument("--azimuth", type=float, default=0.0, help="view turned about the vertical axis, degrees")
    g.add_argument("--elevation", type=float, default=10.0, help="view elevation, degrees (default 10)")
    g.add_argument(
        "--fps", type=float, default=None, help="output frame rate (default: the recording's, else 30)"
    )
    g.add_argument("--show-confidence", action="store_true", help="draw joints by their confidence")


def render_options(args: argparse.Namespace, title: str | None = None) -> RenderOptions:
    from pmr_stream.render import RenderOptions

    return RenderOptions(
        width=args.width,
        height=args.height,
        azimuth_deg=args.azimuth,
        elevation_deg=args.elevation,
        show_confidence=args.show_confidence,
        title=title,
    )


def print_json_line(prefix: str, d: dict[str, Any]) -> None:
    print(f"{prefix} {json.dumps(d, default=str)}", flush=True)
