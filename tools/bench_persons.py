"""Cost of several persons on camera: milliseconds per frame against the number of persons.

    python -m tools.bench_persons [--video FILE] [--frames 40] [--side 640] [--persons 1,2,3,4] [--json FILE]

Footage made from the real single-person NTU clip (S001C001P001R001A001_rgb.avi, read in place):
a square canvas of 2x2 tiles, each the clip cropped around its subject; N tiles show the
subject (every other one mirrored, each 20 frames later than the one before, so no two poses
are the same), the others show the clip's empty background. The canvas has the same size for
every N, so what changes is the number of persons only.

Per N, the multi-person path of ``video:``/``webcam:`` with ``--persons 4``
(:class:`~pmr_stream.capture.multipose.MultiPoseEstimator`: MediaPipe Tasks' PoseLandmarker in
video mode, the tracker and the NTU-25 placement) runs over ``--frames`` frames after
``--warmup`` frames; reported: median / p90 / mean milliseconds per frame (wall clock), the process's
CPU milliseconds per frame (all its threads; less sensitive to other processes' load) and the
persons found per frame. The single-person legacy path (``--persons 1``, ``mediapipe.solutions.pose``) on the
one-person canvas is the baseline. Prints a table and a JSON object (also written to
``--json``); the load average before and after is recorded and a run that started at a
1-minute load of 0.6 or more is marked ``"loaded"`` (the figures are then upper bounds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pmr_stream.stats import percentile_values

from .bench import load_average

VIDEO = "S001C001P001R001A001_rgb.avi"
#: crop of the 1920x1080 clip around its subject, and one of its empty background (x0, y0, side)
SUBJECT, BACKGROUND = (760, 200, 640), (100, 200, 640)
QUIET_LOAD = 0.6


def read_tiles(
    video: Path, count: int, tile: int
) -> tuple[list[npt.NDArray[np.uint8]], npt.NDArray[np.uint8]]:
    """``count`` frames of the subject's crop and one background crop, each ``(tile, tile, 3)`` BGR."""
    import cv2

    from pmr_stream.capture.pose import open_capture

    cap = open_capture(video)
    subject: list[npt.NDArray[np.uint8]] = []
    background = None
    try:
        while len(subject) < count:
            ok, bgr = cap.read()
            if not ok:
                break
            x, y, s = SUBJECT
            subject.append(cv2.resize(bgr[y : y + s, x : x + s], (tile, tile), interpolation=cv2.INTER_AREA))
            if background is None:
                x, y, s = BACKGROUND
                background = cv2.resize(bgr[y : y + s, x : x + s], (tile, tile), interpolation=cv2.INTER_AREA)
    finally:
        cap.release()
    if background is None or len(subject) < 2:
        raise ValueError(f"{video}: too few frames to build the footage")
    return subject, background


def canvas(subject: list[npt.NDArray[np.uint8]], background: npt.NDArray[np.uint8], persons: int,
           i: int) -> npt.NDArray[np.uint8]:  # fmt: skip
    """Frame ``i`` of the 2x2 footage with ``persons`` (0..4) subjects, RGB ``(2*tile, 2*tile, 3)``."""
    n = len(subject)
    tiles = []
    for k in range(4):
        if k < persons:
            t = subject[(i + 20 * k) % n]
            tiles.append(t[:, ::-1] if k % 2 else t)
        else:
            tiles.append(background)
    bgr = np.concatenate([np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)], axis=0)
    return np.ascontiguousarray(bgr[..., ::-1])


def _summary(ms: list[float], cpu_ms: list[float], found: list[int]) -> dict[str, Any]:
    p50, p90 = percentile_values(ms, (50, 90))
    return {"frames": len(ms), "ms_p50": p50, "ms_p90": p90, "ms_mean": float(np.mean(ms)),
            "cpu_ms_mean": float(np.mean(cpu_ms)),
            "persons_found_mean": float(np.mean(found)), "persons_found_min": int(min(found))}  # fmt: skip


def run(video: Path, frames: int, warmup: int, side: int, persons: list[int]) -> dict[str, Any]:
    from pmr_stream.capture.multipose import MultiPoseEstimator
    from pmr_stream.capture.pose import PoseEstimator, PoseOptions

    subject, background = read_tiles(video, 103, side // 2)
    load_before = load_average()
    report: dict[str, Any] = {
        "video": video.name, "canvas": [side, side], "frames": frames, "warmup": warmup,
        "machine": {"host": platform.node(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "load_before": load_before, "loaded": load_before is not None and load_before[0] >= QUIET_LOAD,
        "cases": [],
    }  # fmt: skip
    with PoseEstimator(PoseOptions()) as single:
        ms, cpu, found = [], [], []
        for i in range(warmup + frames):
            rgb = canvas(subject, background, 1, i)
            t0, c0 = time.perf_counter(), time.process_time()
            res = single.process(rgb)
            if i >= warmup:
                ms.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.process_time() - c0) * 1e3)
                found.append(int(res is not None))
        report["cases"].append({"path": "single (solutions.pose)", "persons": 1, **_summary(ms, cpu, found)})
    for n in persons:
        with MultiPoseEstimator(PoseOptions(max_persons=4)) as est:
            ms, cpu, found = [], [], []
            for i in range(warmup + frames):
                rgb = canvas(subject, background, n, i)
                t0, c0 = time.perf_counter(), time.process_time()
                got = est.process_persons(rgb, i, i * 33)
                if i >= warmup:
                    ms.append((time.perf_counter() - t0) * 1e3)
                    cpu.append((time.process_time() - c0) * 1e3)
                    found.append(len(got))
            report["cases"].append({"path": "multi (Tasks, --persons 4)", "persons": n, **_summary(ms, cpu, found),
                                    "tracks_started": est.tracker.started})  # fmt: skip
    report["load_after"] = load_average()
    return report


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{'path':<28} {'persons':>7} {'p50 ms':>8} {'p90 ms':>8} {'mean ms':>8} {'cpu ms':>8} {'found':>6}"
    ]
    for c in report["cases"]:
        lines.append(f"{c['path']:<28} {c['persons']:>7} {c['ms_p50']:>8.1f} {c['ms_p90']:>8.1f} "
                     f"{c['ms_mean']:>8.1f} {c['cpu_ms_mean']:>8.1f} {c['persons_found_mean']:>6.2f}")  # fmt: skip
    lb, la = report["load_before"], report["load_after"]
    lines.append(f"canvas {report['canvas'][0]}x{report['canvas'][1]}, {report['frames']} frames per case; "
                 f"1-min load {lb[0] if lb else '?'} before, {la[0] if la else '?'} after"
                 + (" (LOADED: upper bounds)" if report["loaded"] else ""))  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from pmr_stream.samples import ntu_samples_dir

    p = argparse.ArgumentParser(prog="python -m tools.bench_persons", description=__doc__.split("\n")[0])
    p.add_argument("--video", type=Path, default=ntu_samples_dir() / VIDEO, help="the single-person clip")
    p.add_argument("--frames", type=int, default=40, help="frames timed per case (default 40)")
    p.add_argument("--warmup", type=int, default=5, help="frames run first, not timed (default 5)")
    p.add_argument("--side", type=int, default=640, help="canvas side, pixels (2x2 tiles; default 640)")
    p.add_argument("--persons", default="1,2,3,4", help="persons on the canvas, comma-separated, each 0..4")
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = p.parse_args(argv)
    try:
        persons = [int(x) for x in args.persons.split(",")]
    except ValueError:
        p.error(f"--persons must be comma-separated integers, got {args.persons!r}")
    if not all(0 <= n <= 4 for n in persons) or args.frames < 1 or args.warmup < 0 or args.side < 64:
        p.error("--persons each 0..4, --frames >= 1, --warmup >= 0, --side >= 64")
    if not args.video.is_file():
        print(
            f"bench_persons: error: video not found: {args.video} (set PMR_NTU_DIR or --video)",
            file=sys.stderr,
        )
        return 2
    report = run(args.video, args.frames, args.warmup, args.side, persons)
    print(table(report))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
