"""One declaration of each option set, passed on to child processes unchanged (pmr_stream.flags)."""

from __future__ import annotations

import argparse

import pytest

from pmr_stream.anonymizer.options import ServiceOptions, add_service_arguments
from pmr_stream.backends.options import add_backend_arguments, backend_kwargs
from pmr_stream.demo import add_stream_arguments
from pmr_stream.flags import forward_argv


def _parse(add: object, argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add(p)  # type: ignore[operator]
    return p.parse_args(argv)


GIVEN = ["--backend", "onnxruntime", "--threads", "3", "--spin", "--privacy", "strong", "--max-batch", "64",
         "--max-gap", "4", "--bones", "model", "--engine-thread", "--metrics-port", "0", "--policy", "delay:4"]  # fmt: skip


@pytest.mark.parametrize("add", [add_backend_arguments, add_service_arguments])
def test_what_the_demo_was_given_reaches_the_anonymizer_as_given(add: object) -> None:
    demo = _parse(add_stream_arguments, GIVEN)
    child = _parse(add, forward_argv(add, demo))  # type: ignore[arg-type]
    for dest, value in vars(child).items():
        if dest not in ("stats_json", "report"):  # the demo sets these two itself
            assert getattr(demo, dest) == value, dest


def test_defaults_are_not_written_and_skipped_flags_are_left_to_the_launcher() -> None:
    assert forward_argv(add_service_arguments, _parse(add_stream_arguments, [])) == []
    args = _parse(add_service_arguments, ["--stats-json", "s.json", "--report", "0", "--max-batch", "8"])
    assert forward_argv(lambda p: add_service_arguments(p, skip=("--stats-json", "--report")), args) == [
        "--max-batch",
        "8",
    ]


def test_the_options_read_back_from_the_flags() -> None:
    args = _parse(lambda p: (add_backend_arguments(p), add_service_arguments(p)), GIVEN)
    opts = ServiceOptions.from_args(args)
    assert (opts.max_batch, opts.max_gap, opts.bones, opts.engine_thread, opts.policy.name) == (
        64, 4, "model", True, "delay:4",
    )  # fmt: skip
    assert backend_kwargs(args, max_batch=64) == {
        "threads": 3,
        "privacy": "strong",
        "spin": True,
        "max_batch": 64,
    }


def test_the_demo_hands_its_source_flags_to_the_producer() -> None:
    from pmr_stream.capture.sources import add_source_arguments

    demo = _parse(add_stream_arguments, ["--source", "synthetic:2", "--speed", "0", "--smooth", "--loop"])
    argv = forward_argv(add_source_arguments, demo, skip=("source", "stream", "seed"))
    produce = _parse(add_source_arguments, ["--source", demo.source, *argv])
    assert (produce.speed, produce.smooth, produce.loop, produce.mirrored) == (0.0, True, True, False)
