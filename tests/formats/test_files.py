"""Files read and written by the formats: declared sizes checked before anything is allocated,
writers that hold fewer persons refuse (or write them all), and atomic writes."""

from __future__ import annotations

import io
import os
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.formats import files
from pmr_stream.formats.arrays import load_array_file, read_array
from pmr_stream.formats.io import load_recording, save_recording
from pmr_stream.formats.ntu import NtuSkeleton, SkeletonFormatError, format_skeleton, read_skeleton
from pmr_stream.formats.recording import Recording

#: Most bytes a refused file may cost to look at (the lying files below declare >= 600 MB).
PEAK_LIMIT = 20 * 2**20


@pytest.fixture
def peak() -> Iterator[Callable[[], int]]:
    """Peak bytes traced (numpy reports its allocations to tracemalloc) since the test began."""
    tracemalloc.start()
    try:
        yield lambda: tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def npy_bytes(shape: tuple[int, ...], data: bytes, dtype: str = "<f4") -> bytes:
    """An ``.npy`` whose header declares ``shape`` followed by ``data`` (which may be shorter)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def multi_person(n_t: int = 12, n_p: int = 5, never: tuple[int, ...] = ()) -> Recording:
    """``n_p`` persons, person ``p`` present in frames ``p .. p + 3`` (none for ``never``)."""
    rng = np.random.default_rng(n_p)
    present = np.zeros((n_t, n_p), bool)
    for p in range(n_p):
        if p not in never:
            present[p % n_t : p % n_t + 4, p] = True
    joints = rng.normal(0.0, 0.3, (n_t, n_p, 25, 3)).astype(np.float32) + np.float32(2.0)
    joints[~present] = 0.0
    conf = np.repeat(present[..., None], 25, axis=2).astype(np.float32)
    return Recording(joints, conf, np.arange(n_t) / 30.0, present)


# --------------------------------------------------------------------------- declared sizes


def test_npy_header_larger_than_the_file_is_refused_before_allocating(tmp_path: Path, peak) -> None:
    lie = tmp_path / "lie.npy"
    lie.write_bytes(npy_bytes((10**9, 150), b"\0" * 600))  # declares 559 GiB in 728 bytes
    for load in (lambda: load_recording(lie), lambda: load_array_file(lie, "sgn"), lambda: read_array(lie)):
        with pytest.raises(
            ValueError, match=r"lie\.npy: the header declares shape \(1000000000, 150\)"
        ) as info:
            load()
        assert "600 bytes of data" in str(info.value) and "\n" not in str(info.value)
    assert peak() < PEAK_LIMIT


def test_npy_header_smaller_than_the_file_is_refused(tmp_path: Path) -> None:
    odd = tmp_path / "odd.npy"
    odd.write_bytes(npy_bytes((2, 150), b"\0" * (2 * 150 * 4 + 8)))
    with pytest.raises(
        ValueError, match=r"odd\.npy: the header declares shape \(2, 150\) .* 1208 bytes of data"
    ):
        load_recording(odd)


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_npz_member_declaring_more_frames_than_it_holds(tmp_path: Path, peak) -> None:
    clip = tmp_path / "clip.npz"
    _zip(clip, {"x.npy": npy_bytes((10**6, 150), b"\0" * 4000)})  # 600 MB declared, 4 kB held
    with pytest.raises(ValueError, match=r"clip\.npz: member 'x\.npy' declares shape \(1000000, 150\)"):
        load_recording(clip, "sgn")
    rec = tmp_path / "take.npz"
    good = multi_person()
    good.save(rec)
    with zipfile.ZipFile(rec) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["joints.npy"] = npy_bytes((10**6, 2, 25, 3), b"\0" * 4000)
    _zip(rec, members)
    with pytest.raises(
        ValueError, match=r"take\.npz: member 'joints\.npy' declares shape \(1000000, 2, 25, 3\)"
    ):
        load_recording(rec)
    with pytest.raises(ValueError, match=r"take\.npz: member 'joints\.npy'"):
        Recording.load(rec)
    assert peak() < PEAK_LIMIT


def _forge_sizes(path: Path, member: str, size: int) -> None:
    """Write ``size`` as the uncompressed size of ``member`` in the zip's local and central headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    data[info.header_offset + 22 : info.header_offset + 26] = size.to_bytes(4, "little")  # local header
    central = data.rindex(b"PK\x01\x02")  # the one member's central directory entry
    data[central + 24 : central + 28] = size.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_npz_member_whose_zip_size_is_forged_is_refused(tmp_path: Path, peak) -> None:
    """The member's header and the zip's size agree on 600 MB, but 1 kB of deflate cannot hold it."""
    clip = tmp_path / "forged.npz"
    header = npy_bytes((10**6, 150), b"")
    _zip(clip, {"x.npy": header + b"\0" * 1000})
    _forge_sizes(clip, "x.npy", len(header) + 10**6 * 150 * 4)
    with pytest.raises(
        ValueError, match=r"forged\.npz: member 'x\.npy' claims 600000128 bytes from \d+ deflated"
    ):
        load_recording(clip, "sgn")
    assert peak() < PEAK_LIMIT


def test_arrays_beyond_the_memory_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = multi_person()
    rec.save(tmp_path / "take.npz")
    np.save(tmp_path / "clip.npy", np.zeros((40, 150), np.float32))
    monkeypatch.setattr(files, "MAX_LOAD_BYTES", 10_000)
    with pytest.raises(ValueError, match=r"take\.npz: its arrays .* would need .* more than the limit"):
        load_recording(tmp_path / "take.npz")
    with pytest.raises(ValueError, match=r"clip\.npy: the array \(40, 150\) of float32 would need"):
        load_recording(tmp_path / "clip.npy")
    monkeypatch.setattr(files, "MAX_LOAD_BYTES", None)
    assert files.memory_limit_bytes() > 2**28  # half of any host this runs on
    assert load_recording(tmp_path / "take.npz").num_persons == 5


def test_skeleton_counts_are_checked_against_the_lines_that_follow(tmp_path: Path) -> None:
    one = format_skeleton(NtuSkeleton.from_arrays(np.full((1, 25, 3), 0.5, np.float32)))
    lines = one.split("\n")  # "1", "1", body, "25", 25 joints, ""
    frames = tmp_path / "frames.skeleton"
    frames.write_text("\n".join(["1000000000", *lines[1:]]))
    with pytest.raises(
        SkeletonFormatError,
        match=r"frames\.skeleton line 1: expected a frame count the rest of the file "
        r"can hold \(at most 28, the lines that follow\), got 1000000000",
    ):
        read_skeleton(frames)
    bodies = tmp_path / "bodies.skeleton"
    bodies.write_text("\n".join(["1", "1000000", *lines[2:]]))
    with pytest.raises(
        SkeletonFormatError, match=r"bodies\.skeleton line 2: expected a body count .* got 1000000"
    ):
        read_skeleton(bodies)


def test_skeleton_dense_arrays_beyond_the_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new body ID in every frame: T x P dense arrays grow with the square of the file."""
    n = 40
    joints = np.zeros((n, n, 25, 3), np.float32)
    for t in range(n):
        joints[t, t] = 0.5
    path = tmp_path / "many.skeleton"
    path.write_text(format_skeleton(NtuSkeleton.from_arrays(joints)))
    monkeypatch.setattr(files, "MAX_LOAD_BYTES", n * n * 100)
    with pytest.raises(
        ValueError, match=r"many\.skeleton: 40 frames x 40 persons as dense arrays would need"
    ):
        load_recording(path)


def test_a_directory_is_not_an_input(tmp_path: Path) -> None:
    for name in ("clip.skeleton", "take.npz", "clip.npy"):
        d = tmp_path / name
        d.mkdir()
        with pytest.raises(ValueError, match=rf"{name}: is a directory, not a file"):
            load_recording(d)
        with pytest.raises(ValueError, match=rf"{name}: is a directory, not a file"):
            load_recording(d, "skeleton" if name.endswith("skeleton") else "npz")


# --------------------------------------------------------------------------- what each writer holds


def test_sgn_refuses_more_than_two_persons_and_writes_nothing(tmp_path: Path) -> None:
    rec = multi_person(n_p=3)
    for name in ("three.npy", "three.npz"):
        with pytest.raises(
            ValueError, match=rf"{name}: the SGN format holds 2 persons, the recording has 3 present"
        ):
            save_recording(rec, tmp_path / name, "sgn")
        assert not (tmp_path / name).exists()
    assert os.listdir(tmp_path) == []


def test_sgn_writes_two_persons_when_the_others_are_never_present(tmp_path: Path) -> None:
    rec = multi_person(n_p=4, never=(0, 2))
    written = save_recording(rec, tmp_path / "two.npy", "sgn")
    assert (written.format, written.frames, written.persons) == ("sgn", 12, 2)
    back = load_recording(tmp_path / "two.npy")
    np.testing.assert_array_equal(back.joints, rec.joints[:, [1, 3]])


def test_stgcn_writes_every_person(tmp_path: Path) -> None:
    rec = multi_person(n_t=30, n_p=300)
    written = save_recording(rec, tmp_path / "all.npy", "stgcn")
    arr = np.load(tmp_path / "all.npy", allow_pickle=False)
    assert arr.shape == (3, 30, 25, 300)
    assert (written.format, written.frames, written.persons) == ("stgcn", 30, 300)
    back = load_recording(tmp_path / "all.npy")
    np.testing.assert_array_equal(back.joints, rec.joints)
    np.testing.assert_array_equal(back.present, rec.present)
    small = save_recording(multi_person(n_p=1), tmp_path / "one.npz", "stgcn")
    assert small.persons == 1 and read_array(tmp_path / "one.npz").shape == (3, 12, 25, 2)  # M stays >= 2


def test_skeleton_and_npz_write_every_person(tmp_path: Path) -> None:
    rec = multi_person(n_t=20, n_p=40, never=(7,))
    written = save_recording(rec, tmp_path / "all.skeleton")
    assert (written.format, written.persons) == ("skeleton", 39)
    skel = read_skeleton(tmp_path / "all.skeleton")
    assert len(skel.body_ids()) == 39 and skel.num_frames == 20
    written = save_recording(rec, tmp_path / "all.npz")
    assert (written.format, written.persons) == ("npz", 40)
    assert Recording.load(tmp_path / "all.npz").num_persons == 40


def test_layouts_other_than_ntu25_are_refused_by_name(tmp_path: Path) -> None:
    rec = Recording(
        np.zeros((2, 1, 33, 3)), np.zeros((2, 1, 33)), np.arange(2.0), np.ones((2, 1), bool), "mediapipe33"
    )
    for name, fmt in (("m.skeleton", None), ("m.npy", "sgn"), ("m.npz", "stgcn")):
        with pytest.raises(ValueError, match=rf"{name}: the .* format holds ntu25 skeletons \(25 joints\)"):
            save_recording(rec, tmp_path / name, fmt)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- atomic writes


def _fail_midway(monkeypatch: pytest.MonkeyPatch, where: object, name: str) -> None:
    def broken(fh, *args: object, **kwargs: object) -> None:
        fh.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(where, name, broken)


@pytest.mark.parametrize(
    ("name", "fmt", "patch"),
    [
        ("take.npz", None, "savez_compressed"),
        ("clip.npy", "stgcn", "save"),
        ("clip.npz", "sgn", "savez_compressed"),
    ],
)
def test_a_failed_write_leaves_the_old_file_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, fmt: str | None, patch: str
) -> None:
    path = tmp_path / name
    save_recording(multi_person(n_p=2), path, fmt)
    before = path.read_bytes()
    _fail_midway(monkeypatch, np, patch)
    with pytest.raises(
        ValueError, match=rf"{name}: cannot write \(No space left on device\); the file is unchanged"
    ):
        save_recording(multi_person(n_p=1, n_t=5), path, fmt)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [name]


def test_a_failed_skeleton_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clip.skeleton"
    save_recording(multi_person(n_p=2), path)
    before = path.read_bytes()
    real_open = os.fdopen

    class Full(io.BufferedWriter):
        def write(self, data: object) -> int:  # type: ignore[override]
            super().write(b"half")
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: Full(real_open(fd, mode, buffering=0)))
    with pytest.raises(ValueError, match=r"clip\.skeleton: cannot write"):
        save_recording(multi_person(n_p=1), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["clip.skeleton"]


def test_overwrite_false_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "take.npz"
    save_recording(multi_person(), path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"take\.npz: exists already; pass --overwrite to replace it"):
        save_recording(multi_person(n_p=1), path, overwrite=False)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["take.npz"]
    save_recording(multi_person(n_p=1), tmp_path / "new.npz", overwrite=False)
    assert Recording.load(tmp_path / "new.npz").num_persons == 1


def test_a_symlinked_output_keeps_its_link(tmp_path: Path) -> None:
    target = tmp_path / "real.npz"
    save_recording(multi_person(), target)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    save_recording(multi_person(n_p=1), link)
    assert link.is_symlink() and Recording.load(target).num_persons == 1


def test_output_checks(tmp_path: Path) -> None:
    src = tmp_path / "in.npz"
    save_recording(multi_person(), src)
    (tmp_path / "sub").mkdir()
    (tmp_path / "hard.npz").hardlink_to(src)
    (tmp_path / "soft.npz").symlink_to(src)
    for same in (src, tmp_path / "sub" / ".." / "in.npz", tmp_path / "hard.npz", tmp_path / "soft.npz"):
        with pytest.raises(ValueError, match=r"is the input file .*in\.npz; write to another file"):
            files.check_output_file(same, overwrite=True, inputs=[src])
    with pytest.raises(ValueError, match=r"output .*sub: is a directory; give a file name"):
        files.check_output_file(tmp_path / "sub", overwrite=True)
    with pytest.raises(ValueError, match=r"the folder .*nowhere does not exist"):
        files.check_output_file(tmp_path / "nowhere" / "x.npz")
    with pytest.raises(ValueError, match=r"exists already; pass --overwrite"):
        files.check_output_file(src, inputs=[tmp_path / "other.npz"])
    assert files.check_output_file(src, overwrite=True, inputs=[tmp_path / "other.npz"]) == str(src)


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "private.npz"
    save_recording(multi_person(), path)
    path.chmod(0o600)
    save_recording(multi_person(n_p=1), path)
    assert (path.stat().st_mode & 0o777) == 0o600 and Recording.load(path).num_persons == 1
    fresh = tmp_path / "fresh.npz"
    save_recording(multi_person(n_p=1), fresh)
    umask = os.umask(0o022)
    os.umask(umask)
    assert (fresh.stat().st_mode & 0o777) == 0o666 & ~umask


def test_npz_member_without_the_npy_suffix_is_checked_too(tmp_path: Path, peak) -> None:
    """np.load reads member ``x`` before ``x.npy`` for key ``x``: the one it reads is the one checked."""
    clip = tmp_path / "twin.npz"
    _zip(clip, {"x.npy": npy_bytes((2, 150), b"\0" * 1200), "x": npy_bytes((10**6, 150), b"\0" * 4000)})
    with pytest.raises(ValueError, match=r"twin\.npz: member 'x' declares shape \(1000000, 150\)"):
        load_recording(clip, "sgn")
    assert peak() < PEAK_LIMIT
