"""``pmr bench --end-to-end``: real MediaPipe on the real NTU video, the real producer, service
and subscriber over ZeroMQ on loopback; a short run, checked stage by stage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pmr_stream.cli import main
from tests.ntu_samples import ntu_file

VIDEO = "S001C001P001R001A001_rgb.avi"
FRAMES, WARMUP = 12, 2


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One short run (every frame processed: ``--speed 0``), through the CLI, read back from its JSON."""
    pytest.importorskip("mediapipe")
    video = ntu_file(VIDEO)
    out = tmp_path_factory.mktemp("bench_e2e")
    rc = main(["bench", "--end-to-end", "--source", f"video:{video}", "--frames", str(FRAMES), "--warmup-frames",
               str(WARMUP), "--speed", "0", "--backend", "torch", "--threads", "1", "--timeout", "240",
               "--json", str(out / "e2e.json"), "--table", str(out / "e2e.md")])  # fmt: skip
    assert rc == 0
    data: dict = json.loads((out / "e2e.json").read_text())
    data["table_file"] = (out / "e2e.md").read_text()
    return data


@pytest.mark.slow
@pytest.mark.mediapipe
def test_every_stage_has_sane_figures(report: dict) -> None:
    from pmr_tools.bench_e2e import PARTS, STAGES

    stages = report["stages"]
    assert list(stages) == [name for name, _, _ in STAGES]
    for name, st in stages.items():
        p50, p99 = st["ms_p50"], st["ms_p99"]
        assert p50 is not None and p99 is not None, name
        assert math.isfinite(p50) and math.isfinite(p99), name
        assert 0 < p50 <= p99 < 60_000, (name, p50, p99)
        assert st["samples"] > 0, name
    total = stages["total"]
    # per frame, the parts add up to the total exactly: so do their means
    assert sum(stages[p]["ms_mean"] for p in PARTS) == pytest.approx(total["ms_mean"], rel=1e-3)
    # every frame's total contains each part, so each percentile of the total is at least the part's
    for p in (*PARTS, "pose"):
        assert total["ms_p50"] >= stages[p]["ms_p50"] - 1e-3, p
    assert total["ms_p50"] <= 3 * sum(stages[p]["ms_p50"] for p in PARTS)  # the same order of magnitude
    assert stages["producer"]["ms_p50"] >= stages["pose"]["ms_p50"]  # the producer's time includes pose
    assert stages["engine"]["ms_p50"] <= total["ms_p99"]
    assert stages["pose"]["ms_p50"] > 1.0  # MediaPipe on a 1080p frame takes milliseconds, not nothing


@pytest.mark.slow
@pytest.mark.mediapipe
def test_frame_counts_match_along_the_path(report: dict) -> None:
    f = report["frames"]
    assert f["published"] == FRAMES  # --speed 0: every frame of the video processed, none dropped
    assert f["dropped_at_capture"] == 0
    assert f["gaps"] == 0  # the performer is in every frame
    assert f["persons"] == f["service_in"] == f["service_published"] == f["received"] == FRAMES
    assert f["timed"] == FRAMES - WARMUP
    assert report["stages"]["total"]["samples"] == FRAMES - WARMUP
    assert report["service"]["failed"] == {} and report["service"]["seq_missing_total"] == 0
    rates = report["frames_per_s"]
    assert rates["published"] > 0 and rates["received"] > 0


@pytest.mark.slow
@pytest.mark.mediapipe
def test_report_marks_load_and_names_the_run(report: dict) -> None:
    assert report["mode"] == "end-to-end"
    assert isinstance(report["loaded"], bool) and report["load_before"] is not None
    assert report["source"] == f"video:{VIDEO}"
    assert report["capture"]["width"] == 1920 and report["capture"]["height"] == 1080
    assert report["service"]["backend"] == "torch"
    table = report["table_file"]
    assert table.startswith("machine:")
    for name in report["stages"]:
        assert f"| {name} |" in table
    assert ("**taken under load**" in table) == report["loaded"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--source", "video:/nonexistent/clip.avi"], "/nonexistent/clip.avi"),
        (["--source", "synthetic:1"], "use video:FILE or webcam:N"),
        (["--source", "webcam:97"], "cannot open webcam 97"),
        (["--backend", "torch", "onnxruntime"], "give one --backend"),
        (["--frames", "0"], "--frames"),
        (["--policy", "sideways"], "sideways"),
    ],
)
def test_bad_input_is_one_line(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--end-to-end", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pmr bench: error:") and says in err and "\n" not in err


def test_no_video_says_where_it_looked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("PMR_NTU_DIR", str(tmp_path))  # a folder without the NTU video
    assert main(["bench", "--end-to-end"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / VIDEO) in err and "webcam:N" in err
