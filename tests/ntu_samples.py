"""Where the real NTU RGB+D samples are: read in place from ../shared/data/ntu, never copied.

``$PMR_NTU_DIR`` overrides the folder. Tests that need a sample call
:func:`ntu_file`, which skips the test, saying why, when the sample is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pmr_stream.samples import ntu_samples_dir

NTU_DIR = ntu_samples_dir()


def ntu_file(name: str) -> Path:
    """Path of the real sample ``name``; skips the calling test if it is not there."""
    if not NTU_DIR.is_dir():
        pytest.skip(f"real NTU samples not found: {NTU_DIR} not found (set PMR_NTU_DIR)")
    path = NTU_DIR / name
    if not path.is_file():
        pytest.skip(f"real NTU sample {path} not found")
    return path
