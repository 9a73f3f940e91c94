"""The rerun sink: known frames in, an ``.rrd`` out, read back with rerun's own API; its options and errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.cli import main
from pmr_stream.sinks.rerun import (
    CAPTURE_TIMELINE,
    FRAME_TIMELINE,
    RerunOptions,
    RerunSink,
    RerunUnavailable,
    entity_path,
    grpc_url,
)
from pmr_stream.skeleton import NTU25
from pmr_stream.wire.schema import FrameGap, FrameMessage, StreamEnd, StreamStart
from tests.sinks.rrd_read import logged_persons, timelines

REPO = Path(__file__).resolve().parents[2]
T0 = 1_790_000_000_123_456_789  # a capture time in ns (not a multiple of a microsecond: kept exactly)
DT = 33_333_333


def _joints(frame: int, person: int) -> np.ndarray:
    rng = np.random.default_rng(100 * frame + person)
    return rng.uniform(-1, 2, (25, 3)).astype(np.float32)  # (25, 3) metres


def _frame(stream: str, frame: int, person: int) -> FrameMessage:
    return FrameMessage(stream, person, 0, frame, frame / 30, 0, T0 + frame * DT, _joints(frame, person),
                        np.ones(25, np.float32))  # fmt: skip


def test_known_frames_are_logged_and_read_back(tmp_path: Path) -> None:
    """Two persons on anon/, one on raw/: per person joints and bones at each frame's number and
    capture time; a person missing from a frame and everyone on a gap are cleared at that frame."""
    out = tmp_path / "known.rrd"
    anon_persons = {0: [0, 1], 1: [0, 1], 2: [0], 3: [], 4: [0, 1], 5: [1]}  # frame -> persons (3: a gap)
    with RerunSink(RerunOptions(rrd=out)) as sink:
        sink.add("anon/cam1", StreamStart("cam1", 0, "s", 0, T0, 30.0, "test"))
        for f, persons in anon_persons.items():
            if not persons:
                sink.add("anon/cam1", FrameGap("cam1", 0, f, f / 30, 0, T0 + f * DT))
            for p in persons:
                sink.add("anon/cam1", _frame("cam1", f, p))
            sink.add("raw/lobby-2", _frame("lobby-2", f, 7))
        sink.add("anon/cam1", StreamEnd("cam1", 0, 0, T0 + 6 * DT, "eof", 6))
    assert sink.stats.frames == {"anon": 8, "raw": 6} and sink.stats.gaps == 1
    assert sink.stats.streams == {"anon/cam1", "raw/lobby-2"}

    assert {CAPTURE_TIMELINE, FRAME_TIMELINE} <= timelines(out)
    got = logged_persons(out)
    assert set(got) == {"/anon/cam1/person0", "/anon/cam1/person1", "/raw/lobby-2/person7"}
    assert entity_path("anon", "cam1", 0) == "anon/cam1/person0"
    for path, stream, person in (("/anon/cam1/person0", "cam1", 0), ("/anon/cam1/person1", "cam1", 1),
                                 ("/raw/lobby-2/person7", "lobby-2", 7)):  # fmt: skip
        frames = [f for f, ps in anon_persons.items() if person in ps] if stream == "cam1" else list(range(6))
        g = got[path]
        assert g.frames == frames
        assert g.capture_ns == [T0 + f * DT for f in frames]
        want = np.stack([_joints(f, person) for f in frames])  # (N, 25, 3)
        np.testing.assert_array_equal(g.joints, want)
        bones = np.asarray(NTU25.bones)  # (24, 2): child, parent
        np.testing.assert_array_equal(g.bones, want[:, bones])  # (N, 24, 2, 3)
    assert got["/anon/cam1/person1"].cleared == [2]  # absent from frame 2 (and 3: already cleared)
    assert got["/anon/cam1/person0"].cleared == [3, 5]  # the gap, then absent from the last frame
    assert got["/raw/lobby-2/person7"].cleared == []  # the last pose of a stream stays


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="nothing to log to"):
        RerunOptions()
    with pytest.raises(ValueError, match="not both"):
        RerunOptions(spawn=True, url="127.0.0.1:9876")
    with pytest.raises(ValueError, match=r"must end in \.rrd"):
        RerunOptions(rrd=Path("out.mp4"))
    with pytest.raises(ValueError, match="expected rerun\\+http://HOST:PORT/proxy"):
        RerunOptions(url="tcp://127.0.0.1:9876")
    assert grpc_url("127.0.0.1:9876") == "rerun+http://127.0.0.1:9876/proxy"
    assert grpc_url("rerun+http://10.0.0.2:9000/proxy") == "rerun+http://10.0.0.2:9000/proxy"


def test_spawn_on_a_headless_host_fails_clearly(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RerunUnavailable, match="no display"):
        RerunSink(RerunOptions(spawn=True))
    rc = main(["view", "--endpoint", "tcp://127.0.0.1:1", "--rerun", "--duration", "0.1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("pmr view: error: --rerun without a URL spawns a viewer window")
    assert len(err.strip().splitlines()) == 1


def test_url_without_a_viewer_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = main(
        ["view", "--endpoint", "tcp://127.0.0.1:1", "--rerun", f"127.0.0.1:{port}", "--duration", "0.1"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and f"--rerun rerun+http://127.0.0.1:{port}/proxy: no rerun viewer there" in err


def test_cli_refuses_rerun_with_a_picture_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = main(
        ["view", "--endpoint", "tcp://127.0.0.1:1", "--rrd", str(tmp_path / "a.rrd"), "--output", "a.mp4"]
    )
    assert rc == 2 and "with --rerun/--rrd the skeletons go to rerun" in capsys.readouterr().err
    # raw/ topics alone only with --show-original
    rc = main(
        ["view", "--endpoint", "tcp://127.0.0.1:1", "--rrd", str(tmp_path / "a.rrd"), "--topic", "raw/"]
    )
    assert rc == 2 and "--topic must start with anon/" in capsys.readouterr().err


def test_rerun_is_imported_only_when_used(tmp_path: Path) -> None:
    """``pmr --help`` and the parser never import rerun; without it, --rrd ends in one line naming the extra."""
    code = (
        "import sys\n"
        "from pmr_stream.cli import build_parser, main\n"
        "build_parser().parse_args(['view', '--endpoint', 'tcp://127.0.0.1:1', '--rrd', 'x.rrd'])\n"
        "assert 'rerun' not in sys.modules, 'the parser imported rerun'\n"
        "sys.modules['rerun'] = None  # as if rerun-sdk were not installed\n"
        f"sys.exit(main(['view', '--endpoint', 'tcp://127.0.0.1:1', '--rrd', {str(tmp_path / 'x.rrd')!r}]))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == (
        "pmr view: error: --rerun/--rrd need rerun-sdk, which does not import (import of rerun halted; None in "
        "sys.modules): install the rerun extra: pip install 'pmr-stream[rerun]' (rerun-sdk==0.23.1)"
    )
    assert not (tmp_path / "x.rrd").exists()


def test_overlay_flags_are_checked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = main(["view", "--endpoint", "tcp://127.0.0.1:1", "--overlay-video", "clip.mp4"])
    assert rc == 2 and "--overlay-video goes with --rerun or --rrd" in capsys.readouterr().err
    missing = tmp_path / "nope.mp4"
    rc = main(["view", "--endpoint", "tcp://127.0.0.1:1", "--rrd", str(tmp_path / "a.rrd"), "--overlay-video",
               str(missing)])  # fmt: skip
    assert rc == 2 and f"--overlay-video {missing}: no such file" in capsys.readouterr().err
    not_video = tmp_path / "x.mp4"
    not_video.write_text("not a video")
    rc = main(["view", "--endpoint", "tcp://127.0.0.1:1", "--rrd", str(tmp_path / "a.rrd"), "--overlay-video",
               str(not_video), "--overlay-fov", "200"])  # fmt: skip
    assert rc == 2 and "--overlay-fov must be between 1 and 179 degrees" in capsys.readouterr().err
    assert not (tmp_path / "a.rrd").exists()  # nothing was opened
