"""Stable person ids across frames: which detection of this frame is which person of the last.

Pure numpy (no MediaPipe): :class:`PersonTracker` takes each frame's detected persons, as the
hip centre and bounding box in pixels, and answers each one's **person id**, a *slot* in
``0 .. max_persons - 1`` (what :attr:`~pmr_stream.capture.source.StreamInfo.max_persons`
announces, like a Kinect's six body slots).

Association, frame by frame:

1. duplicates: a detection whose box overlaps a better-scored one by more than
   ``duplicate_iou`` (intersection over union) is the same person seen twice; it gets no id.
2. each live track predicts where its hip centre is now (constant velocity from its last
   positions) and every (track, detection) pair gets a cost: the distance of the detection
   from the prediction in the track's body heights (box height), plus ``|log(h_det / h_track)|``
   (a person does not change size much from one frame to the next; two persons crossing at
   different depths do differ).
3. greedy association on the sorted costs: the cheapest pair first, each track and detection
   used once, pairs costing more than ``gate`` never. With a handful of persons and a gate,
   this gives the same pairs as an optimal (Hungarian) assignment in all but contrived cases,
   without a SciPy dependency.
4. a detection left over starts a new track in the lowest free slot, the best-scored first;
   with no free slot it gets no id (counted in :attr:`PersonTracker.refused`).
5. a track not matched keeps its slot for ``max_missed`` frames (a short occlusion: the person
   is re-associated when seen again, within the gate around the prediction) and is then
   dropped. Its slot is free again ``reuse_after`` frames after the person was last seen, so a
   reused slot always follows a break longer than the anonymizer's ``--max-gap`` (default 10
   frames): the service then starts a fresh window for it instead of bridging two persons.

Guarantee: an id never jumps to another person in the sense that its position never moves
more than ``gate`` body heights from its own prediction; a person who leaves and comes back
after ``max_missed`` frames gets a new track (maybe the same slot number, after the rest).
Frames in which a track is not matched are gaps for that person: nothing is invented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class TrackerOptions:
    """Options of :class:`PersonTracker`.

    Attributes:
        gate: largest association cost, in body heights (distance from the prediction, plus the
            log size ratio) for a detection to continue a track.
        max_missed: frames a track may go unseen (occlusion) and still be re-associated.
        reuse_after: frames after a person was last seen before their slot may take a new
            person (>= ``max_missed``).
        duplicate_iou: detections overlapping a better one by more than this are dropped.
        velocity_smoothing: weight of the newest velocity in its running average, (0, 1].
    """

    gate: float = 0.5
    max_missed: int = 15
    reuse_after: int = 30
    duplicate_iou: float = 0.6
    velocity_smoothing: float = 0.5

    def __post_init__(self) -> None:
        if not (np.isfinite(self.gate) and self.gate > 0):
            raise ValueError(f"gate must be a positive number of body heights, got {self.gate}")
        if type(self.max_missed) is not int or self.max_missed < 0:
            raise ValueError(f"max_missed must be an integer >= 0 (frames), got {self.max_missed!r}")
        if type(self.reuse_after) is not int or self.reuse_after < self.max_missed:
            raise ValueError(f"reuse_after must be an integer >= max_missed ({self.max_missed}), "
                             f"got {self.reuse_after!r}")  # fmt: skip
        if not 0.0 < self.duplicate_iou <= 1.0:
            raise ValueError(f"duplicate_iou must be in (0, 1], got {self.duplicate_iou}")
        if not 0.0 < self.velocity_smoothing <= 1.0:
            raise ValueError(f"velocity_smoothing must be in (0, 1], got {self.velocity_smoothing}")


@dataclass
class Track:
    """One person being tracked: ``slot`` (the person id), last hip centre ``(2,)`` and box
    height in pixels, velocity ``(2,)`` pixels per frame, the frames it started and was last seen."""

    slot: int
    centre: npt.NDArray[np.float64]
    height: float
    velocity: npt.NDArray[np.float64]
    first_frame: int
    last_frame: int

    def predict(self, frame: int) -> npt.NDArray[np.float64]:
        return self.centre + self.velocity * (frame - self.last_frame)


def box_iou(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Intersection over union of boxes ``a (N, 4)`` and ``b (M, 4)`` as ``(x0, y0, x1, y1)``: ``(N, M)``."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0.0, None).prod(axis=-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0.0, None).prod(axis=-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0.0, None).prod(axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


class PersonTracker:
    """Person ids (slots ``0 .. max_persons - 1``) for the detections of consecutive frames.

    Counters: :attr:`started` tracks begun, :attr:`refused` detections without a free slot,
    :attr:`duplicates` detections dropped as another's duplicate.
    """

    def __init__(self, max_persons: int, options: TrackerOptions | None = None) -> None:
        if type(max_persons) is not int or max_persons < 1:
            raise ValueError(f"max_persons must be a positive integer, got {max_persons!r}")
        self.max_persons = max_persons
        self.options = options or TrackerOptions()
        self.tracks: dict[int, Track] = {}  # slot -> live track
        self._released: dict[int, int] = {}  # slot -> frame its last person was last seen
        self._last_frame: int | None = None
        self.started = 0
        self.refused = 0
        self.duplicates = 0

    def _free_slot(self, frame: int) -> int | None:
        for s in range(self.max_persons):
            if s in self.tracks:
                continue
            seen = self._released.get(s)
            if seen is None or frame - seen > self.options.reuse_after:
                return s
        return None

    def update(
        self,
        frame: int,
        centres: npt.ArrayLike,
        boxes: npt.ArrayLike,
        scores: npt.ArrayLike | None = None,
    ) -> npt.NDArray[np.int64]:
        """Associate one frame's detections; returns each one's person id ``(N,)``, ``-1`` for none.

        Args:
            frame: frame index, increasing (frames may be skipped: the prediction covers them).
            centres: ``(N, 2)`` hip centres, pixels.
            boxes: ``(N, 4)`` bounding boxes ``(x0, y0, x1, y1)``, pixels.
            scores: ``(N,)`` detection quality (higher is better), or ``None`` (all equal).
        """
        c = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
        n = len(c)
        b = np.asarray(boxes, dtype=np.float64)
        if b.shape != (n, 4):
            raise ValueError(f"boxes must have shape ({n}, 4) for {n} centres, got {b.shape}")
        s = np.zeros(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        if s.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {s.shape}")
        if not (np.isfinite(c).all() and np.isfinite(b).all()):
            raise ValueError("centres and boxes must be finite")
        if self._last_frame is not None and frame <= self._last_frame:
            raise ValueError(f"frame {frame} is not after the last frame {self._last_frame}")
        self._last_frame = frame
        o = self.options
        ids = np.full(n, -1, dtype=np.int64)
        order = np.argsort(-s, kind="stable")
        keep: list[int] = []
        iou = box_iou(b, b)
        for i in order:
            if any(iou[i, k] > o.duplicate_iou for k in keep):
                self.duplicates += 1
            else:
                keep.append(int(i))
        heights = np.maximum(b[:, 3] - b[:, 1], 1.0)
        # associate live tracks with the kept detections
        pairs: list[tuple[float, int, int]] = []
        for slot, tr in self.tracks.items():
            pred = tr.predict(frame)
            for i in keep:
                cost = float(np.linalg.norm(c[i] - pred)) / tr.height + abs(
                    float(np.log(heights[i] / tr.height))
                )
                if cost <= o.gate:
                    pairs.append((cost, slot, i))
        pairs.sort()
        used_tracks: set[int] = set()
        for _, slot, i in pairs:
            if slot in used_tracks or ids[i] >= 0:
                continue
            used_tracks.add(slot)
            ids[i] = slot
            tr = self.tracks[slot]
            v = (c[i] - tr.centre) / (frame - tr.last_frame)
            tr.velocity = o.velocity_smoothing * v + (1.0 - o.velocity_smoothing) * tr.velocity
            tr.centre, tr.height, tr.last_frame = c[i].copy(), float(heights[i]), frame
        # drop tracks unseen too long (before new ones take slots)
        for slot in [k for k, tr in self.tracks.items() if frame - tr.last_frame > o.max_missed]:
            self._released[slot] = self.tracks.pop(slot).last_frame
        # new tracks for the detections left, best first
        for i in keep:  # already in score order
            if ids[i] >= 0:
                continue
            slot_or_none = self._free_slot(frame)
            if slot_or_none is None:
                self.refused += 1
                continue
            self.tracks[slot_or_none] = Track(
                slot_or_none, c[i].copy(), float(heights[i]), np.zeros(2), frame, frame
            )
            self._released.pop(slot_or_none, None)
            ids[i] = slot_or_none
            self.started += 1
        return ids

    def reset(self) -> None:
        """Forget every track (a new video); the counters stay."""
        self.tracks.clear()
        self._released.clear()
        self._last_frame = None


__all__ = ["TrackerOptions", "Track", "PersonTracker", "box_iou"]
