"""Where the real NTU RGB+D samples are: read in place from ../shared/data/ntu, never copied.

``$PMR_NTU_DIR`` overrides the folder. Tests that need a sample call
:func:`ntu_file`, which skips the test, saying why, when the sample is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NTU_DIR = Path(os.environ.get("PMR_NTU_DIR", REPO.parent / "shared" / "data" / "ntu"))


def ntu_file(name: str) -> Path:
    """Path of the real sample ``name``; skips the calling test if it is not there."""
    if not NTU_DIR.is_dir():
        pytest.skip(f"real NTU samples not found: {NTU_DIR} not found (set PMR_NTU_DIR)")
    path = NTU_DIR / name
    if not path.is_file():
        pytest.skip(f"real NTU sample {path} not found")
    return path
