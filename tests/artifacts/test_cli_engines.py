"""``pmr export`` and ``pmr bench`` end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import onnx
import pytest

from pmr_stream.cli import main


def test_export_onnx_to_a_folder(
    model_files: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, dummy = model_files
    out = tmp_path / "build"
    assert main(["export", "--format", "onnx", "--output", f"{out}/", "--model-path", model, "--dummy", dummy,
                 "--precision", "fp16"]) == 0  # fmt: skip
    (onnx_file,) = out.glob("*.onnx")
    assert onnx_file.name.endswith("-folded-fp16-op17.onnx") and (out / (onnx_file.name + ".json")).is_file()
    onnx.checker.check_model(onnx.load(str(onnx_file)))
    assert "wrote" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_export_tensorrt_without_tensorrt_says_how(model_files: tuple[str, str], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    model, dummy = model_files
    rc = main(["export", "--format", "tensorrt", "--output", str(tmp_path / "x.engine"), "--model-path", model,
               "--dummy", dummy, "--cache-dir", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "pmr export: error:" in err and "pip install" in err
    assert not (tmp_path / "x.engine").exists()


def test_export_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["export", "--format", "onnx", "--output", str(tmp_path / "x.onnx"), "--model-path", str(tmp_path / "no.pt"),
               "--dummy", str(tmp_path / "no.npy")])  # fmt: skip
    assert rc == 2 and "checkpoint not found" in capsys.readouterr().err


def test_bench_writes_json_table_and_histogram(model_files: tuple[str, str], cache: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    model, dummy = model_files
    js = tmp_path / "bench.json"
    rc = main(["bench", "--backend", "onnxruntime", "torch", "--batch-sizes", "1,4", "--seconds", "0.05",
               "--model-path", model, "--dummy", dummy, "--cache-dir", cache, "--json", str(js),
               "--table", str(tmp_path / "bench.md"), "--paper-calls", "20", "--threads", "1"])  # fmt: skip
    assert rc == 0
    report = json.loads(js.read_text())
    assert {(c["backend"], c["batch"]) for c in report["cases"]} == {
        ("onnxruntime", 1),
        ("onnxruntime", 4),
        ("torch", 1),
        ("torch", 4),
    }
    for c in report["cases"]:
        assert (
            c["p50_ms"] <= c["p90_ms"] <= c["p99_ms"] and c["windows_per_s"] > 0 and c["x_paper_latency"] > 0
        )
        assert "samples_ms" not in c
    assert report["paper_way"]["mean_ms"] > 0 and 40e6 < report["flops_per_window"]["reference"] < 42e6
    assert report["peak_flops"]["fp32"] > 0 and report["floor_ms"]["reference/fp32"] > 0
    assert report["load_before"] is not None
    assert js.with_suffix(".png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "paper's way" in out and "| onnxruntime | fp32 | folded | 1 |" in out
    assert (tmp_path / "bench.md").read_text().startswith("machine:")


@pytest.mark.parametrize(("argv", "message"), [
    (["--batch-sizes", "1,x"], "--batch-sizes must be comma-separated integers"),
    (["--batch-sizes", "0"], "--batch-sizes must be positive integers"),
])  # fmt: skip
def test_bench_refuses_bad_batch_sizes(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bench_on_cuda_without_a_gpu_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has a CUDA GPU")
    assert main(["bench", "--device", "cuda", "--no-paper"]) == 2
    assert "sees no CUDA device" in capsys.readouterr().err


def test_the_prepared_gpu_script_dry_runs_on_cpu(tmp_path: Path) -> None:
    """``tools/bench_gpu.py --device cpu`` runs every step of the GPU script (stream step
    included) so that a lent GPU's minutes are not spent finding a broken script."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "gpu"
    p = subprocess.run(
        [sys.executable, "-m", "tools.bench_gpu", str(out), "--device", "cpu", "--no-pytest", "--batch-sizes", "1",
         "--seconds", "0.05", "--stream-streams", "4", "--budget", "200"],
        capture_output=True, text=True, timeout=300, cwd=root,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for name in ("env.json", "parity.json", "bench.json", "bench.md", "summary.md", "stream.json", "log.txt"):
        assert (out / name).is_file(), name
    stream = json.loads((out / "stream.json").read_text())
    (row,) = stream["rows"]
    assert (
        row["streams"] == 4 and row["holds"] and row["frames_in"] == row["published"] == row["received"] > 0
    )


def test_bench_compares_like_with_like_and_marks_a_loaded_run() -> None:
    """The latency ratio is median over median, the floor uses the case's own graph, and a run that
    started on a busy machine says so in its table."""
    import numpy as np

    from pmr_tools.bench import PAPER_PUBLISHED_MS, CaseSpec, _result, format_table

    samples = np.array([1.0, 2.0, 2.0, 100.0])  # ms per call of batch 4: the mean is 26, the p50 2
    paper = {"mean_ms": 8.0, "p50_ms": 4.0, "how": "eager", "calls": 4, "device": "cpu"}
    flops = {"reference": 40_000_000, "folded": 20_000_000}
    res = _result(CaseSpec(backend="torch", graph="folded"), "cpu", 4, samples, 1.0, paper, flops,
                  {"fp32": 1e11})  # fmt: skip
    assert res.x_paper_latency == 4.0 / 2.0  # not the paper's mean over our p50 (4.0)
    assert res.x_paper_throughput == 16 * 8.0 / 1e3  # 16 windows in 1 s of wall time, against the mean
    assert res.floor_fraction == (20e6 / 1e11) / (
        2.0 / 4 / 1e3
    )  # the folded graph's FLOPs, not the network's
    report = {
        "machine": {"cpu": "x", "cpu_count": 2}, "load_before": (3.5, 2.0, 1.0), "load_after": None,
        "loaded": True, "quiet_load": 0.6, "paper_way": paper, "flops_per_window": flops, "peak_flops": {},
        "cases": [], "errors": {},
    }  # fmt: skip
    table = format_table(report)
    assert "**taken under load** (1-min load 3.50 >= 0.6" in table
    assert f"paper's published figure: {PAPER_PUBLISHED_MS:g} ms per 75-frame window" in table
    report["loaded"] = False
    assert "taken under load" not in format_table(report)
