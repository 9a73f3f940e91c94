"""ServiceOptions' command-line glue: add_service_arguments / ServiceOptions.from_args."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pmr_stream.anonymizer.options import BONES, ServiceOptions, add_service_arguments
from pmr_stream.anonymizer.window import WindowPolicy


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_service_arguments(p)
    return p


def test_no_flags_give_the_dataclass_defaults() -> None:
    assert ServiceOptions.from_args(_parser().parse_args([])) == ServiceOptions()


def test_every_flag_reaches_its_field() -> None:
    args = _parser().parse_args([
        "--policy", "delay:4", "--max-batch", "7", "--max-wait-ms", "2.5", "--max-gap", "3", "--idle", "9",
        "--max-metadata-bytes", "2048", "--max-streams", "5", "--max-persons-per-stream", "2",
        "--max-persons", "11", "--report", "0", "--stats-json", "s.json", "--bones", "model",
        "--engine-thread", "--metrics-port", "0", "--metrics-host", "0.0.0.0",
    ])  # fmt: skip
    o = ServiceOptions.from_args(args, stream_key=b"k" * 32, public_stream_ids={"lobby"})
    assert o == ServiceOptions(
        policy=WindowPolicy(4), max_batch=7, max_wait_ms=2.5, max_gap=3, idle_s=9.0, max_metadata_bytes=2048,
        max_streams=5, max_persons_per_stream=2, max_persons=11, report_s=0.0, stats_json=Path("s.json"),
        bones="model", engine_thread=True, metrics_port=0, metrics_host="0.0.0.0", stream_key=b"k" * 32,
        public_stream_ids=frozenset({"lobby"}),
    )  # fmt: skip


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="window policy"):
        ServiceOptions.from_args(_parser().parse_args(["--policy", "soon"]))
    with pytest.raises(ValueError, match="max_batch"):
        ServiceOptions.from_args(_parser().parse_args(["--max-batch", "0"]))
    with pytest.raises(SystemExit):
        _parser().parse_args(["--bones", "mine"])
    for b in BONES:  # every choice of --bones is one the dataclass takes
        assert ServiceOptions(bones=b).bones == b
