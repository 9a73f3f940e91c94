"""The fast `.skeleton` writer (formats/ntu_text.py) and the reader's block path give exactly what
the reference ones give: the same characters, the same numbers, the same errors."""

from __future__ import annotations

import numpy as np
import pytest

from pmr_stream.formats.io import load_recording
from pmr_stream.formats.ntu import NtuSkeleton, SkeletonFormatError, format_skeleton, parse_skeleton
from pmr_stream.formats.ntu_text import format_arrays
from tests.ntu_samples import NTU_DIR, ntu_file


def _reference(j: np.ndarray, c: np.ndarray, p: np.ndarray, ids: list[int] | None) -> str:
    return format_skeleton(NtuSkeleton.from_arrays(j, c, p, body_ids=ids))


def test_the_real_samples_give_the_same_text() -> None:
    files = sorted(NTU_DIR.glob("*.skeleton")) or [ntu_file("S001C001P001R001A001.skeleton")]
    for f in files:
        rec = load_recording(f)
        assert format_arrays(rec.joints, rec.confidence, rec.present, rec.ntu_body_ids()) == _reference(
            rec.joints, rec.confidence, rec.present, rec.ntu_body_ids()
        )


@pytest.mark.parametrize("scale", [1e-9, 1e-5, 1e-3, 0.1, 1.0, 3.0, 1e3, 1e7, 1e12, 1e20])
def test_random_arrays_of_every_magnitude_give_the_same_text(scale: float) -> None:
    rng = np.random.default_rng(int(np.log10(scale) + 20))
    for k in range(4):
        t, n = int(rng.integers(1, 30)), int(rng.integers(1, 4))
        j = (rng.standard_normal((t, n, 25, 3)) * scale).astype(np.float32)
        if k % 2:
            j[..., 2] = np.abs(j[..., 2])  # in front of the camera (pixels projected) or not
        j[:, :, 3] = 0.0 if k == 2 else j[:, :, 3]
        conf = rng.choice([0.0, 0.3, 0.5, 0.8, 1.0], (t, n, 25)).astype(np.float32)
        pres = rng.random((t, n)) > 0.3
        ids = [5 + 7 * p for p in range(n)] if k % 2 else None
        assert format_arrays(j, conf, pres, ids) == _reference(j, conf, pres, ids)


def test_what_the_fast_writer_cannot_take_goes_the_reference_way() -> None:
    j = np.zeros((2, 1, 25, 3), np.float32)
    c, p = np.ones((2, 1, 25), np.float32), np.ones((2, 1), bool)
    assert format_arrays(j, c, p) is not None
    j[1, 0, 4, 2] = np.nan
    assert format_arrays(j, c, p) is None  # the reference path names the problem
    assert format_arrays(j.astype(np.float64), c, p) is None
    assert format_arrays(j[:, :, :20], c, p) is None


def test_the_block_reader_reads_what_the_line_reader_reads() -> None:
    text = ntu_file("S001C003P008R002A058.skeleton").read_text()
    fast = parse_skeleton(text)
    lines = text.split("\n")
    # a value with an underscore is refused by the line reader: the block path must not take it
    bad = "\n".join(lines[:4] + [lines[4].replace(lines[4].split()[0], "0_1", 1)] + lines[5:])
    with pytest.raises(
        SkeletonFormatError, match="line 5: expected 12 numbers for a joint, got non-numeric x"
    ):
        parse_skeleton(bad)
    bad = "\n".join(lines[:4] + [lines[4] + " 7"] + lines[5:])
    with pytest.raises(SkeletonFormatError, match="line 5: expected 12 numbers for a joint, got 13"):
        parse_skeleton(bad)
    bad = "\n".join(lines[:4] + [lines[4].rsplit(" ", 1)[0] + " 1.5"] + lines[5:])
    with pytest.raises(SkeletonFormatError, match="line 5: .*non-integer trackingState"):
        parse_skeleton(bad)
    # the same numbers as the line-by-line reader (the reference: one float() per value)
    ref = [[float(v) for v in line.split()] for line in lines[4:29]]
    np.testing.assert_array_equal(fast.frames[0].bodies[0].joints, np.array(ref))
    assert fast.num_frames == int(lines[0]) and sum(len(f.bodies) for f in fast.frames) > fast.num_frames
