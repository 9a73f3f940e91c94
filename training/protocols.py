"""The evaluation's splits (protocols): which clips train the evaluators, which test the methods.

* ``cross-view`` (the PMR paper's): train cameras 2 and 3, test camera 1. The same take
  (performer, action, replication) is in both, filmed from another angle, so re-ID and
  linkage partly become near-duplicate matching.
* ``cross-take`` (no shared performance): train every camera of replication 1, test
  camera 1 of replication 2, so each test take is seen once and none of its performances
  is in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from pmr_stream.skeleton import CROSS_VIEW_TEST_CAMERAS, CROSS_VIEW_TRAIN_CAMERAS

from .data import ClipSet

PROTOCOLS: Final[tuple[str, ...]] = ("cross-view", "cross-take")


@dataclass(frozen=True)
class Protocol:
    """A split: training clips where ``train_cameras`` and ``train_replications`` select,
    test clips where ``test_cameras`` and ``test_replications`` do (``None``: all)."""

    name: str
    train_cameras: tuple[int, ...] | None
    train_replications: tuple[int, ...] | None
    test_cameras: tuple[int, ...] | None
    test_replications: tuple[int, ...] | None
    description: str

    def _mask(self, clips: ClipSet, cams: tuple[int, ...] | None, reps: tuple[int, ...] | None) -> np.ndarray:
        keep = np.ones(len(clips), bool)
        if cams is not None:
            keep &= np.isin(clips.camera, cams)
        if reps is not None:
            keep &= np.isin(clips.replication, reps)
        return keep

    def split(self, clips: ClipSet) -> tuple[ClipSet, ClipSet]:
        """``(train, test)`` of a clip set holding every camera and replication.

        Raises ``ValueError`` naming the protocol when either side is empty (e.g. a dataset
        with one replication has no cross-take split).
        """
        train = clips.subset(self._mask(clips, self.train_cameras, self.train_replications))
        test = clips.subset(self._mask(clips, self.test_cameras, self.test_replications))
        for side, part in (("training", train), ("test", test)):
            if len(part) == 0:
                raise ValueError(f"protocol {self.name}: no {side} clips in {clips.source or 'the data'} "
                                 f"(cameras {sorted(set(clips.camera.tolist()))}, "
                                 f"replications {sorted(set(clips.replication.tolist()))})")  # fmt: skip
        return train, test


_ALL: Final[dict[str, Protocol]] = {
    "cross-view": Protocol("cross-view", CROSS_VIEW_TRAIN_CAMERAS, None, CROSS_VIEW_TEST_CAMERAS, None,
                           "train cameras 2, 3; test camera 1 (the paper's split; takes shared across views)"),
    "cross-take": Protocol("cross-take", None, (1,), (1,), (2,),
                           "train replication 1 (all cameras); test replication 2, camera 1 (no shared take)"),
}  # fmt: skip


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; a one-line ``ValueError`` otherwise."""
    if name not in _ALL:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")
    return _ALL[name]


def parse_protocols(value: str) -> tuple[str, ...]:
    """``--protocol`` value: ``cross-view``, ``cross-take`` or ``both`` -> protocol names (cross-take first)."""
    if value == "both":
        return ("cross-take", "cross-view")
    return (get_protocol(value).name,)


def takes(clips: ClipSet) -> set[tuple[int, int, int]]:
    """The takes ``(performer, action, replication)`` of a clip set (one take, several cameras)."""
    return set(zip(clips.performer.tolist(), clips.action.tolist(), clips.replication.tolist(), strict=True))


__all__ = ["PROTOCOLS", "Protocol", "get_protocol", "parse_protocols", "takes"]
