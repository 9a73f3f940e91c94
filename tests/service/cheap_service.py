"""A cheap numpy backend, and the real anonymizer service around it as a process of its own.

``python -m tests.service.cheap_service RAW_ENDPOINT STATS_JSON OPTIONS_JSON`` runs
:func:`pmr_stream.anonymizer.service.serve` (real ZeroMQ sockets) with :class:`CheapBackend` until
SIGINT/SIGTERM, writing the service's statistics to ``STATS_JSON`` every 0.2 s; the
options are :class:`~pmr_stream.anonymizer.service.ServiceOptions` fields as a JSON map. It prints
``ready <anon endpoint>`` once bound. Used by the memory soak test, which measures this
process's resident size from outside.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pmr_stream.skeleton import C, J, T


class _Source:
    """What the service reads of a backend's model source."""

    model_id = "cheap-model"

    def __init__(self) -> None:
        j = np.arange(J, dtype=np.float32)
        frame = np.stack([j / 50, 0.8 - j / 40, 3 + j / 100], axis=1)
        self.dummy_window = np.repeat(frame[None], T, axis=0)  # (75, 25, 3) metres


class CheapBackend:
    """``anonymize((B, 75, 25, 3)) -> (B, 75, 25, 3)``: the windows pulled halfway to the origin (no network)."""

    name = "cheap"
    device = "cpu"

    def __init__(self) -> None:
        self.source = _Source()
        self.calls = 0

    def anonymize(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        x = np.asarray(x, dtype=np.float32)
        assert x.shape[1:] == (T, J, C), x.shape
        return x * np.float32(0.5)

    def warmup(self, shape: tuple[int, int] = (1, 8)) -> None:
        self.anonymize(np.zeros((shape[0], T, J, C), np.float32))


def main(argv: list[str]) -> int:
    from pmr_stream.anonymizer.options import ServiceOptions
    from pmr_stream.anonymizer.service import serve
    from pmr_stream.wire.sockets import SocketOptions, stop_on_signals

    raw, stats_json, options = argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    fields: dict[str, Any] = {"report_s": 0.2, "bones": "model", **json.loads(options)}
    opts = ServiceOptions(stats_json=Path(stats_json), **fields)
    with stop_on_signals() as stop:
        serve([raw], "tcp://127.0.0.1:*", CheapBackend(), "cheap-model", opts, SocketOptions(hwm=1_000_000),
              stop=stop, ready=lambda ep: print(f"ready {ep}", flush=True))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
