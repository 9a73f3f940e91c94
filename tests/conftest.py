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


@pytest.fixture(scope="session")
def _stream_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stream-key")


@pytest.fixture(autouse=True)
def _private_stream_key(_stream_key_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and the ``pmr`` processes it starts) uses a stream-id key of the test session,
    never the user's ``~/.config/pmr-stream/stream_key``."""
    monkeypatch.setenv("PMR_STREAM_KEY", str(_stream_key_dir / "stream_key"))
