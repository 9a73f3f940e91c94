"""`pmr convert` and `pmr anonymize` as real processes on real files: nothing lost silently, a
directory or the input itself is never an output, an existing output needs --overwrite, a
failed write leaves no partial file, and a file lying about its size is refused in one line."""

from __future__ import annotations

import io
import os
import resource
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.assets import DEFAULT_MODEL
from pmr_stream.formats.recording import Recording

REPO = Path(__file__).resolve().parents[1]
PMR = Path(sys.executable).with_name("pmr")
needs_default = pytest.mark.skipif(
    not DEFAULT_MODEL.exists(), reason=f"default model {DEFAULT_MODEL} not built"
)


def pmr(*args: str, fsize_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``pmr`` entry point of the venv on this tree's package (``PYTHONPATH``)."""
    cmd = [str(PMR)] if PMR.exists() else [sys.executable, "-m", "pmr_stream.cli"]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")

    def limit() -> None:  # a full disk, for this process only: writes past fsize_limit bytes fail
        if fsize_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(
                resource.RLIMIT_FSIZE, (fsize_limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1])
            )

    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=120, env=env, cwd=REPO, preexec_fn=limit
    )


def refused(res: subprocess.CompletedProcess[str], command: str, *fragments: str) -> str:
    """The one error line of a refused command (exit 2, no traceback), checked for ``fragments``."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"pmr {command}: error: "), res.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def persons_recording(n_t: int = 12, n_p: int = 5) -> Recording:
    """``n_p`` persons, person ``p`` present in frames ``p .. p + 3`` (mod ``n_t``)."""
    rng = np.random.default_rng(n_p)
    present = np.zeros((n_t, n_p), bool)
    for p in range(n_p):
        present[p % n_t : p % n_t + 4, p] = True
    joints = rng.normal(0.0, 0.2, (n_t, n_p, 25, 3)).astype(np.float32) + np.array(
        [0.0, 0.0, 3.0], np.float32
    )
    joints[~present] = 0.0
    conf = np.repeat(present[..., None], 25, axis=2).astype(np.float32)
    return Recording(joints, conf, np.arange(n_t) / 30.0, present)


@pytest.fixture
def take(tmp_path: Path) -> Path:
    path = tmp_path / "take.npz"
    persons_recording().save(path)
    return path


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# --------------------------------------------------------------------------- pmr convert


def test_convert_needs_overwrite_to_replace_an_output(take: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.skeleton"
    out.write_text("good file\n")
    refused(
        pmr("convert", "--input", str(take), "--output", str(out)),
        "convert",
        str(out),
        "exists already; pass --overwrite",
    )
    assert out.read_text() == "good file\n"
    res = pmr("convert", "--input", str(take), "--output", str(out), "--overwrite")
    assert res.returncode == 0, res.stderr
    assert out.read_text().startswith("12\n") and listing(tmp_path) == ["out.skeleton", "take.npz"]


@pytest.mark.parametrize("how", ["same path", "dot-dot", "symlink", "hard link"])
def test_convert_never_writes_over_its_input(take: Path, tmp_path: Path, how: str) -> None:
    before = take.read_bytes()
    (tmp_path / "sub").mkdir()
    out = {
        "same path": take,
        "dot-dot": tmp_path / "sub" / ".." / "take.npz",
        "symlink": tmp_path / "link.npz",
        "hard link": tmp_path / "hard.npz",
    }[how]
    if how == "symlink":
        out.symlink_to(take)
    elif how == "hard link":
        out.hardlink_to(take)
    for extra in ([], ["--overwrite"]):  # refused even with --overwrite
        refused(
            pmr("convert", "--input", str(take), "--output", str(out), *extra),
            "convert",
            "is the input file",
            "write to another file",
        )
        assert take.read_bytes() == before


@pytest.mark.parametrize("name", ["clip.skeleton", "take.npz", "clip.npy", "folder"])
def test_convert_a_directory_as_input_or_output(take: Path, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "d" / name
    folder.mkdir(parents=True)
    refused(
        pmr("convert", "--input", str(folder), "--output", str(tmp_path / "x.npz")),
        "convert",
        str(folder),
        "is a directory",
    )
    for extra in ([], ["--overwrite"]):
        refused(
            pmr("convert", "--input", str(take), "--output", str(folder), "--to", "npz", *extra),
            "convert",
            str(folder),
            "is a directory",
        )
    assert listing(tmp_path) == ["d", "take.npz"] and listing(folder) == []


def test_convert_into_a_missing_folder(take: Path, tmp_path: Path) -> None:
    refused(
        pmr("convert", "--input", str(take), "--output", str(tmp_path / "nowhere" / "x.npz")),
        "convert",
        "nowhere does not exist",
    )


def test_convert_to_sgn_refuses_more_than_two_persons(take: Path, tmp_path: Path) -> None:
    refused(
        pmr("convert", "--input", str(take), "--output", str(tmp_path / "x.npy"), "--to", "sgn"),
        "convert",
        "x.npy: the SGN format holds 2 persons, the recording has 5 present",
    )
    assert listing(tmp_path) == ["take.npz"]


def test_convert_to_stgcn_writes_every_person_and_says_so(tmp_path: Path) -> None:
    src = tmp_path / "crowd.npz"
    rec = persons_recording(n_t=20, n_p=60)
    rec.save(src)
    res = pmr("convert", "--input", str(src), "--output", str(tmp_path / "x.npy"), "--to", "stgcn")
    assert res.returncode == 0, res.stderr
    arr = np.load(tmp_path / "x.npy", allow_pickle=False)
    assert arr.shape == (3, 20, 25, 60)
    np.testing.assert_array_equal(arr.transpose(1, 3, 2, 0), rec.joints)
    assert "(20 frames, 60 person(s))" in res.stdout


def _npy(shape: tuple[int, ...], data: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def test_convert_refuses_files_that_declare_more_than_they_hold(tmp_path: Path) -> None:
    lie = tmp_path / "lie.npy"
    lie.write_bytes(_npy((10**9, 150), b"\0" * 600))  # 728 bytes declaring 559 GiB
    assert lie.stat().st_size == 728
    refused(
        pmr("convert", "--input", str(lie), "--output", str(tmp_path / "a.npz")),
        "convert",
        f"{lie}: the header declares shape (1000000000, 150)",
        "600 bytes of data",
    )
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", _npy((10**6, 150), b"\0" * 4000))  # 10^6 frames declared, 4 kB held
    refused(
        pmr("convert", "--input", str(bomb), "--output", str(tmp_path / "b.npz")),
        "convert",
        f"{bomb}: member 'x.npy' declares shape (1000000, 150)",
    )
    assert listing(tmp_path) == ["bomb.npz", "lie.npy"]


def test_convert_a_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    src = tmp_path / "long.npz"
    joints = np.random.default_rng(0).normal(0.0, 0.2, (100, 2, 25, 3)) + 3.0
    Recording.from_clip(joints).save(src)  # 200 bodies: about 400 kB of .skeleton text
    out = tmp_path / "out.skeleton"
    res = pmr("convert", "--input", str(src), "--output", str(out), fsize_limit=64 * 1024)
    refused(res, "convert", str(out), "cannot write (File too large)")
    assert listing(tmp_path) == ["long.npz"]  # no partial output, no temporary file
    out.write_text("good file\n")
    res = pmr("convert", "--input", str(src), "--output", str(out), "--overwrite", fsize_limit=64 * 1024)
    refused(res, "convert", "the file is unchanged")
    assert out.read_text() == "good file\n" and listing(tmp_path) == ["long.npz", "out.skeleton"]


# --------------------------------------------------------------------------- pmr anonymize


def test_anonymize_refuses_sgn_for_three_persons_before_running_the_network(tmp_path: Path) -> None:
    src = tmp_path / "three.npz"
    persons_recording(n_p=3).save(src)
    out = tmp_path / "anon.npy"
    refused(
        pmr("anonymize", "--input", str(src), "--output", str(out), "--output-format", "sgn"),
        "anonymize",
        "anon.npy: the SGN format holds 2 persons, the recording has 3 present",
    )
    assert listing(tmp_path) == ["three.npz"]


@pytest.mark.parametrize("case", ["input", "directory", "existing", "missing folder"])
def test_anonymize_output_paths(take: Path, tmp_path: Path, case: str) -> None:
    before = take.read_bytes()
    (tmp_path / "dir").mkdir()
    (tmp_path / "old.npz").write_bytes(b"keep me")
    out, fragment = {
        "input": (take, "is the input file"),
        "directory": (tmp_path / "dir", "is a directory"),
        "existing": (tmp_path / "old.npz", "exists already; pass --overwrite"),
        "missing folder": (tmp_path / "no" / "x.npz", "does not exist"),
    }[case]
    for extra in ([], ["--overwrite"]) if case in ("input", "directory") else ([],):  # input: even with it
        refused(
            pmr("anonymize", "--input", str(take), "--output", str(out), *extra),
            "anonymize",
            str(out),
            fragment,
        )
        assert take.read_bytes() == before and (tmp_path / "old.npz").read_bytes() == b"keep me"
    assert listing(tmp_path) == ["dir", "old.npz", "take.npz"] and listing(tmp_path / "dir") == []


@needs_default
def test_anonymize_stgcn_writes_every_person_and_counts_what_it_wrote(take: Path, tmp_path: Path) -> None:
    out = tmp_path / "anon.npy"
    res = pmr("anonymize", "--input", str(take), "--output", str(out), "--output-format", "stgcn")
    assert res.returncode == 0, res.stderr
    arr = np.load(out, allow_pickle=False)
    assert arr.shape == (3, 12, 25, 5)
    rec = Recording.load(take)
    np.testing.assert_array_equal(np.any(arr != 0, axis=(0, 2)), rec.present)  # each person where it was
    assert not np.allclose(arr.transpose(1, 3, 2, 0)[rec.present], rec.joints[rec.present], atol=1e-3)
    assert ": 12 frames, 5 person(s) anonymized" in res.stdout
