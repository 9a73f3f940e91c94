"""The `pmr` command end to end: real files in, real files out, clear errors on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.cli import main


def test_convert_real_skeleton_to_npz_and_back(ntu_dir: Path, tmp_path: Path) -> None:
    from pmr_stream.formats.ntu import read_skeleton
    from pmr_stream.formats.recording import Recording

    src = ntu_dir / "S001C003P008R002A058.skeleton"  # two persons
    assert main(["convert", "--input", str(src), "--output", str(tmp_path / "a.npz")]) == 0
    rec = Recording.load(tmp_path / "a.npz")
    assert rec.joints.shape == (70, 2, 25, 3)
    assert (
        main(["convert", "--input", str(tmp_path / "a.npz"), "--output", str(tmp_path / "b.skeleton")]) == 0
    )
    back, _, _, _ = read_skeleton(tmp_path / "b.skeleton").to_arrays()
    orig, _, _, _ = read_skeleton(src).to_arrays()
    np.testing.assert_allclose(back, orig, atol=1e-6)
    assert (
        main(
            [
                "convert",
                "--input",
                str(tmp_path / "a.npz"),
                "--output",
                str(tmp_path / "c.npy"),
                "--to",
                "stgcn",
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "c.npy", allow_pickle=False).shape == (3, 70, 25, 2)


def test_visualize_writes_gif_and_contact_sheet(ntu_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    src = ntu_dir / "S003C001P015R001A034.skeleton"
    assert (
        main(
            [
                "visualize",
                "--input",
                str(src),
                "--output",
                str(tmp_path / "v.gif"),
                "--width",
                "160",
                "--height",
                "120",
            ]
        )
        == 0
    )
    with Image.open(tmp_path / "v.gif") as im:
        assert im.n_frames == 71 and im.size == (160, 120)
    assert (
        main(
            [
                "visualize",
                "--input",
                str(src),
                "--output",
                str(tmp_path / "v.png"),
                "--width",
                "160",
                "--height",
                "120",
            ]
        )
        == 0
    )
    assert (tmp_path / "v.png").stat().st_size > 1000


def test_compare_side_by_side(ntu_dir: Path, tmp_path: Path) -> None:
    import cv2

    a = ntu_dir / "S001C001P001R001A001.skeleton"
    b = ntu_dir / "S001C001P001R001A011.skeleton"
    out = tmp_path / "cmp.mp4"
    assert (
        main(
            [
                "compare",
                "--original",
                str(a),
                "--anonymized",
                str(b),
                "--output",
                str(out),
                "--width",
                "160",
                "--height",
                "120",
            ]
        )
        == 0
    )
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 82  # the shorter of 103 and 82
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 320
    cap.release()


def test_make_dataset_small(tmp_path: Path) -> None:
    out = tmp_path / "standin.npz"
    assert main(["make-dataset", "--output", str(out), "--performers", "3", "--replications", "1",
                 "--cameras", "1", "--actions", "wave", "jump", "--quiet"]) == 0  # fmt: skip
    with np.load(out, allow_pickle=False) as z:
        assert len(z["performer"]) == 3 * 2


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["visualize", "--input", "{tmp}/missing.skeleton", "--output", "{tmp}/x.mp4"], "missing.skeleton"),
        (["convert", "--input", "{tmp}/broken.skeleton", "--output", "{tmp}/x.npz"], "line"),
        (["visualize", "--input", "{tmp}/broken.skeleton", "--output", "{tmp}/x.webm"], "broken.skeleton"),
        (["convert", "--input", "{tmp}/data.txt", "--output", "{tmp}/x.npz"], "data.txt"),
    ],
)
def test_bad_input_is_one_clear_line(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.skeleton").write_text("2\n1\n72057594037931101 0 1 1 1 1 0 0.1 0.2 2\n25\n0.1 0.2\n")
    (tmp_path / "data.txt").write_text("hello\n")
    rc = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err and "error" in err and "Traceback" not in err


def test_console_entry_point_help() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pmr_stream.cli", "--help"], capture_output=True, text=True, check=True
    )
    for cmd in ("visualize", "compare", "convert", "make-dataset"):
        assert cmd in res.stdout


def test_every_option_of_every_command_says_what_it_does() -> None:
    """`pmr COMMAND --help` explains each flag (plugins' commands included), and `--version` answers."""
    import argparse

    from pmr_stream.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert len(sub.choices) >= 18
    missing = {
        name: [a.option_strings[0] for a in p._actions if a.option_strings and not a.help]
        for name, p in sub.choices.items()
    }
    assert not {k: v for k, v in missing.items() if v}
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--version"])
    assert exc.value.code == 0
