"""The recorder never loses a take: real sockets, real `pmr record` processes, real files.

Each case below lost a whole recording before: a hostile person id sized the arrays, an
output that was a directory failed only at the end, two takes were written to one name,
and everything was in memory until the end (``kill -9`` lost it all).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pmr_stream.formats.recording import Recording
from pmr_stream.sinks.recorder import Recorder
from pmr_stream.wire.schema import FrameGap, FrameMessage, StreamEnd, StreamStart
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber
from tests.sinks.segments_seen import segment_infos
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
TCP_ANY = "tcp://127.0.0.1:*"


def _pmr(*args: str, preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pmr_stream.cli", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn,
    )  # fmt: skip


def _start(stream: str, session: str = "s1", max_persons: int = 2) -> StreamStart:
    return StreamStart(
        stream, 0, session, time.monotonic_ns(), time.time_ns(), 30.0, "test", max_persons=max_persons
    )


def _frame(stream: str, seq: int, f: int, person: int = 0) -> FrameMessage:
    joints = (
        np.full((25, 3), f / 100, np.float32)
        + np.arange(25, dtype=np.float32)[:, None] / 50
        + person % 7 / 10
    )
    return FrameMessage(stream, person, seq, f, f / 30, time.monotonic_ns(), time.time_ns(), joints,
                        np.full(25, 0.75, np.float32))  # fmt: skip


def _end(stream: str, seq: int) -> StreamEnd:
    return StreamEnd(stream, seq, time.monotonic_ns(), time.time_ns())


def _pump(sub: Subscriber, rec: Recorder, cond: Callable[[], bool], timeout_s: float = 20) -> None:
    """Hand what ``sub`` receives to ``rec`` until ``cond()`` (within ``timeout_s``)."""

    def pumped() -> bool:
        if cond():
            return True
        r = sub.receive(0.05)
        if r is not None:
            rec.add(r)
        return False

    wait_until(pumped, timeout_s=timeout_s, interval_s=0, what="the messages")


def _finish(proc: subprocess.Popen[str], timeout_s: float = 30) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _record(out: Path, send: Callable[[Publisher], None], *extra: str, stop: str = "until-end",
            received: Callable[[list[dict[str, Any]]], bool] = lambda infos: True,
            preexec_fn: Callable[[], None] | None = None) -> tuple[int, str, str]:  # fmt: skip
    """Run `pmr record` against a real publisher, ``send`` through it, stop it (``--until-end``, or
    SIGINT once ``received(segment_infos(out))`` says the recorder has the messages); returns
    (exit status, stdout, stderr)."""
    flags = ["--until-end"] if stop == "until-end" else []
    with Publisher(TCP_ANY) as pub:
        proc = _pmr("record", "--endpoint", pub.endpoint, "--output", str(out), "--duration", "30",
                    *flags, *extra, preexec_fn=preexec_fn)  # fmt: skip
        try:
            assert pub.wait_for_subscribers(1, timeout_s=30), "the recorder never subscribed"
            send(pub)
            if stop == "sigint":
                wait_until(lambda: received(segment_infos(out)), what="the recorder to write what was sent")
                proc.send_signal(signal.SIGINT)
            stdout, stderr = _finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return proc.returncode, stdout, stderr


# ----------------------------------------------------------------------------- case 1: person ids


def _limit_memory() -> None:  # in the child: 1.5 GiB of address space (the recorder needs ~0.4)
    resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))


def test_a_huge_person_id_costs_one_column_not_the_take(tmp_path: Path) -> None:
    """Before: arrays sized by the largest id (65,537 columns x 300 frames: 7.3 GiB) and nothing written."""
    out = tmp_path / "big.npz"

    def send(pub: Publisher) -> None:
        pub.send(_start("cam", max_persons=65536))
        for f in range(300):
            pub.send(_frame("cam", f + 1, f, 65536 if f == 7 else 0))
        pub.send(_end("cam", 301))

    rc, stdout, stderr = _record(out, send, preexec_fn=_limit_memory)
    assert rc == 0, stderr
    rec = Recording.load(out)
    assert rec.joints.shape == (300, 2, 25, 3)
    assert rec.metadata["wire"]["person_ids"] == [0, 65536]
    assert (
        rec.present[:, 0].sum() == 299
        and rec.present[:, 1].sum() == 1
        and rec.present[7].tolist() == [False, True]
    )
    np.testing.assert_array_equal(rec.joints[7, 1], _frame("cam", 0, 7, 65536).joints)


def test_persons_beyond_the_cap_are_refused_and_counted(tmp_path: Path) -> None:
    out = tmp_path / "cap.npz"

    def send(pub: Publisher) -> None:
        pub.send(_start("crowd", max_persons=100))
        seq = 1
        for f in range(10):
            for p in (0, 5, 9, 40, 41):  # 40 and 41 come after the cap of 3 ids
                pub.send(_frame("crowd", seq, f, p))
                seq += 1
        pub.send(_end("crowd", seq))

    rc, stdout, stderr = _record(out, send, "--max-persons", "3")
    assert rc == 0, stderr
    assert "refused 20 frame message(s) of persons beyond --max-persons 3: {'raw/crowd': 20}" in stdout
    rec = Recording.load(out)
    assert rec.num_persons == 3 and rec.present.all()
    assert rec.metadata["wire"]["person_ids"] == [0, 5, 9]
    assert rec.metadata["wire"]["refused_persons"] == 20


# ----------------------------------------------------------------------------- case 2: the output path


def test_a_directory_as_output_is_refused_before_the_first_frame(tmp_path: Path) -> None:
    """Before: it recorded, then IsADirectoryError at the rename, the temporary file deleted."""
    folder = tmp_path / "adir"
    folder.mkdir()
    with Publisher(TCP_ANY) as pub:
        proc = _pmr("record", "--endpoint", pub.endpoint, "--output", str(folder), "--duration", "120")
        t0 = time.monotonic()
        stdout, stderr = _finish(proc)
        assert pub.poll_subscriptions(0) == []  # it never subscribed
    assert proc.returncode == 2, (stdout, stderr)
    assert time.monotonic() - t0 < 60  # refused at once (process start only), not after --duration 120
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert f"output {folder}: is a directory" in stderr
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("case", ["parent_is_a_file", "exists", "parts_left", "not_npz"])
def test_unusable_outputs_are_one_line_exit_2(case: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = {"parent_is_a_file": blocker / "sub" / "t.npz", "not_npz": tmp_path / "t.dat"}.get(
        case, tmp_path / "t.npz"
    )
    if case == "exists":
        out.write_bytes(b"keep me")
    if case == "parts_left":
        (tmp_path / "t.npz.parts").mkdir()
    proc = _pmr("record", "--endpoint", "tcp://127.0.0.1:1", "--output", str(out), "--duration", "3")
    stdout, stderr = _finish(proc)
    assert proc.returncode == 2, (stdout, stderr)
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    needle = {"parent_is_a_file": "cannot create the folder", "exists": "exists already; pass --overwrite",
              "parts_left": "pmr record --recover --output", "not_npz": "ending in .npz"}[case]  # fmt: skip
    assert needle in stderr and str(out) in stderr
    if case == "exists":
        assert out.read_bytes() == b"keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_an_unwritable_folder_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    proc = _pmr("record", "--endpoint", "tcp://127.0.0.1:1", "--output", str(ro / "t.npz"), "--duration", "3")
    stdout, stderr = _finish(proc)
    assert proc.returncode == 2 and "cannot write in the folder" in stderr, stderr


def test_overwrite_replaces_an_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "t.npz"
    out.write_bytes(b"old")

    def send(pub: Publisher) -> None:
        pub.send(_start("cam"))
        for f in range(5):
            pub.send(_frame("cam", f + 1, f))
        pub.send(_end("cam", 6))

    rc, stdout, stderr = _record(out, send, "--overwrite")
    assert rc == 0, stderr
    assert Recording.load(out).num_frames == 5
    assert not (tmp_path / "t.npz.parts").exists()


# ----------------------------------------------------------------------------- case 3: file names


def test_a_restarted_stream_and_a_dotted_stream_never_share_a_file(tmp_path: Path) -> None:
    """Before: the second take of ``cam`` and the stream ``cam.2`` were both ``take.cam.2.npz``."""
    out = tmp_path / "take.npz"

    def send(pub: Publisher) -> None:
        pub.send(_start("cam", "s1"))
        pub.send(_frame("cam", 1, 0))
        pub.send(_end("cam", 2))
        pub.send(_start("cam", "s2"))  # the producer restarted: a new session, a second take
        pub.send(_frame("cam", 1, 0))
        pub.send(_frame("cam", 2, 1))
        pub.send(_start("cam.2", "s3"))
        for f in range(3):
            pub.send(_frame("cam.2", f + 1, f))
        pub.send(_end("cam", 3))
        pub.send(_end("cam.2", 4))

    rc, stdout, stderr = _record(out, send, stop="sigint",
                                 received=lambda infos: sum(i["ended"] is not None for i in infos) == 3)  # fmt: skip
    assert rc == 0, stderr
    files = {p.name: Recording.load(p) for p in tmp_path.glob("*.npz")}
    assert sorted(files) == ["take.cam.2.npz", "take.cam.npz", "take.cam~2.npz"], sorted(files)
    assert [files[n].num_frames for n in ("take.cam.npz", "take.cam~2.npz", "take.cam.2.npz")] == [1, 2, 3]
    assert files["take.cam~2.npz"].metadata["wire"]["session"] == "s2"
    assert files["take.cam.2.npz"].metadata["wire"]["stream"] == "cam.2"
    assert not (tmp_path / "take.npz.parts").exists()


def test_take_names_cover_prefixes_and_takes() -> None:
    from pmr_stream.sinks.segments import take_names

    names = [p.name for p in take_names("o/t.npz", ["raw/a", "anon/a", "raw/a", "raw/a.2"])]
    assert names == ["t.raw.a.npz", "t.anon.a.npz", "t.raw.a~2.npz", "t.raw.a.2.npz"]
    assert [p.name for p in take_names("t.npz", ["raw/x"])] == ["t.npz"]


# ----------------------------------------------------------------------------- writing as it goes


def test_segments_are_written_while_recording_and_merged_at_the_end(tmp_path: Path) -> None:
    """Segments appear while the take runs; a frame whose persons straddle two segments is one row."""
    from pmr_stream.sinks.recorder import WriteOptions

    out2 = tmp_path / "u.npz"
    parts2 = tmp_path / "u.npz.parts" / "take-0001"
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=10)
        rec = Recorder(sub, out2, WriteOptions(flush_s=3600))
        assert (tmp_path / "u.npz.parts").is_dir()  # claimed before the first frame
        pub.send(_start("cam"))
        pub.send(_frame("cam", 1, 0, 0))
        pub.send(_frame("cam", 2, 1, 0))
        _pump(sub, rec, lambda: rec.frames >= 2)
        assert rec.flush() == 1
        wait_until((parts2 / "seg-000001.npz").is_file, what="the first segment")
        seg = Recording.load(parts2 / "seg-000001.npz")  # a segment is a valid recording by itself
        assert seg.num_frames == 2 and seg.metadata["pmr_segment"]["frames"] == [0, 1]
        pub.send(_frame("cam", 3, 1, 1))  # frame 1's second person, in the next segment
        pub.send(FrameGap("cam", 4, 2, 2 / 30, time.monotonic_ns(), time.time_ns()))
        pub.send(_end("cam", 5))
        _pump(sub, rec, lambda: rec.takes[0].end is not None)
        written = rec.save()
    assert [p for p, _ in written] == [out2]
    assert not (tmp_path / "u.npz.parts").exists()
    got = Recording.load(out2)
    assert got.joints.shape == (3, 2, 25, 3)
    assert got.present.tolist() == [[True, False], [True, True], [False, False]]
    np.testing.assert_array_equal(got.joints[1, 1], _frame("cam", 0, 1, 1).joints)
    np.testing.assert_allclose(got.timestamps, np.arange(3) / 30)
    assert got.metadata["wire"]["ended"] == "eof" and got.metadata["wire"]["segments"] == 2


def test_kill_9_loses_at_most_about_a_second_and_the_take_is_recovered(tmp_path: Path) -> None:
    """Frames for 2.5 s at 60 fps, then ``kill -9``: `pmr record --recover` gives back a valid take
    with every frame sent more than ~1.5 s before the kill (segments are written every second)."""
    out = tmp_path / "take.npz"
    with Publisher(TCP_ANY) as pub:
        proc = _pmr("record", "--endpoint", pub.endpoint, "--output", str(out), "--duration", "60")
        try:
            assert pub.wait_for_subscribers(1, timeout_s=30), "the recorder never subscribed"
            pub.send(_start("cam", max_persons=1))
            sent: list[float] = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.5:
                f = len(sent)
                pub.send(_frame("cam", f + 1, f))
                sent.append(time.monotonic())
                time.sleep(max(0.0, t0 + (f + 1) / 60 - time.monotonic()))  # a live 60 fps source's pace
            os.kill(proc.pid, signal.SIGKILL)
            t_kill = time.monotonic()
            _finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and (tmp_path / "take.npz.parts").is_dir()
    rproc = _pmr("record", "--recover", "--output", str(out))
    stdout, stderr = _finish(rproc)
    assert rproc.returncode == 0, stderr
    assert f"recovered {out} (" in stdout
    rec = Recording.load(out)
    n = rec.num_frames
    must = sum(1 for t in sent if t < t_kill - 1.5)
    assert n >= must, f"recovered {n} of {len(sent)} frames; {must} were sent more than 1.5 s before the kill"
    np.testing.assert_allclose(rec.timestamps, np.arange(n) / 30)  # frames 0..n-1, none missing in between
    np.testing.assert_array_equal(rec.joints[n - 1, 0], _frame("cam", 0, n - 1).joints)
    assert rec.metadata["wire"]["ended"] is None and rec.metadata["wire"]["source"] == "test"
    assert not (tmp_path / "take.npz.parts").exists()  # recovered: the parts are gone
    again = _pmr("record", "--recover", "--output", str(out))
    _, err = _finish(again)
    assert again.returncode == 2 and "no segments to recover" in err


def test_recover_keeps_a_take_whose_file_exists(tmp_path: Path) -> None:
    """Recovery never replaces a file without --overwrite; the take stays in the parts folder."""
    from pmr_stream.sinks.recorder import WriteOptions
    from pmr_stream.sinks.segments import finish_parts

    out = tmp_path / "t.npz"
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=10)
        rec = Recorder(sub, out, WriteOptions(flush_s=3600))
        pub.send(_start("cam"))
        for f in range(4):
            pub.send(_frame("cam", f + 1, f))
        _pump(sub, rec, lambda: rec.frames >= 4)
        rec.close()  # as a crash would leave it, but with the last segment written
    out.write_bytes(b"someone else's")
    done = finish_parts(out)
    assert len(done) == 1 and done[0].error is not None and "exists already" in done[0].error
    assert out.read_bytes() == b"someone else's" and (tmp_path / "t.npz.parts" / "take-0001").is_dir()
    done = finish_parts(out, overwrite=True)
    assert done[0].error is None and Recording.load(out).num_frames == 4
    assert not (tmp_path / "t.npz.parts").exists()


def test_recovery_skips_a_damaged_segment_and_keeps_the_rest(tmp_path: Path) -> None:
    from pmr_stream.sinks.recorder import WriteOptions
    from pmr_stream.sinks.segments import finish_parts

    out = tmp_path / "t.npz"
    take = tmp_path / "t.npz.parts" / "take-0001"
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=10)
        rec = Recorder(sub, out, WriteOptions(flush_s=3600))
        pub.send(_start("cam"))
        for f in range(9):
            pub.send(_frame("cam", f + 1, f))
            _pump(sub, rec, lambda f=f: rec.frames > f)
            if f % 3 == 2:
                rec.flush()  # segments of frames 0-2, 3-5, 6-8
        rec.close()
    assert sorted(p.name for p in take.iterdir()) == ["seg-000001.npz", "seg-000002.npz", "seg-000003.npz"]
    seg2 = take / "seg-000002.npz"
    seg2.write_bytes(seg2.read_bytes()[:100])  # cut short (as a disk fault could)
    bad = Recording.load(take / "seg-000003.npz")  # metadata that reads, rows that do not match
    bad.metadata["pmr_segment"]["frames"] = [6, 7]
    bad.save(take / "seg-000004.npz")
    (take / ".seg-000005.npz.123.tmp").write_bytes(b"half a write")
    done = finish_parts(out)
    assert done[0].error is None, done[0].error
    assert [b.split(":")[0] for b in done[0].summary.bad_segments] == ["seg-000002.npz", "seg-000004.npz"]
    got = Recording.load(out)
    np.testing.assert_allclose(got.timestamps, np.array([0, 1, 2, 6, 7, 8]) / 30)
    assert got.metadata["wire"]["segments"] == 2
