"""Shared data of the evaluation tests: one tiny stand-in dataset, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmr_stream.synth import StandinSpec, generate_standin

#: 4 performers x 3 actions x 3 cameras x 2 replications = 72 clips
TINY_SPEC = StandinSpec(
    performers=4, actions=("wave", "squat", "drink"), cameras=(1, 2, 3), replications=2, seed=5
)


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny stand-in ``.npz`` (generated on first use)."""
    path = tmp_path_factory.mktemp("standin") / "tiny.npz"
    generate_standin(TINY_SPEC).save_npz(path)
    return path
