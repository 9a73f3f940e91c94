"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ntu_samples import NTU_DIR


@pytest.fixture(scope="session")
def ntu_dir() -> Path:
    """The folder of real NTU samples; the test is skipped, saying why, when it is absent."""
    if not NTU_DIR.is_dir():
        pytest.skip(f"real NTU samples not found at {NTU_DIR} (set PMR_NTU_DIR)")
    return NTU_DIR
