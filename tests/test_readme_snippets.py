"""The README's Python blocks run as written.

Convention (stated in the README's first Python block): every fenced block opened with
```` ```python ```` runs, in README order, in ONE shared namespace (a block may use names an
earlier block defined), with an empty temporary directory as the working directory (relative
paths it writes land there; files it reads must ship with the package, e.g.
``pmr_stream.assets``, or be written by an earlier block). Blocks of other languages
(```` ```bash ````, ```` ```text ````, ...) are not run. A Python block that cannot run on a
CPU-only checkout (a GPU, TensorRT, a dataset) starts with the line ``# not run: REASON`` and is
only compiled.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
#: a fenced ```python block: (its first code line's number, its code)
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
NOT_RUN = "# not run:"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every ```python block of ``text``; ``line``: its first code line (1-based)."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _FENCE.finditer(text)]


def test_block_extraction_on_a_known_text() -> None:
    text = "intro\n```bash\necho no\n```\n```python\na = 1\n```\ntext\n```python\nb = a + 1\n```\n"
    assert python_blocks(text) == [(6, "a = 1\n"), (10, "b = a + 1\n")]


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 3, "the README should show the Python API"
    code = "".join(c for _, c in blocks)
    assert "default_window_fn()" in code and "anonymize_recording(" in code  # how to load the shipped model
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    ran = 0
    for line, block in blocks:
        # line numbers of errors are the README's: the block is compiled at its own place
        compiled = compile("\n" * (line - 1) + block, str(README), "exec")
        if block.lstrip().startswith(NOT_RUN):
            continue
        exec(compiled, namespace)  # noqa: S102  # the README's own code, the point of this test
        ran += 1
    assert ran >= 3
    assert (tmp_path / "demo_anonymized.npz").is_file()  # the offline block wrote its file here
    assert namespace["anon"].metadata["bones"] == "dummy" and namespace["own"].metadata["bones"] == "model"
