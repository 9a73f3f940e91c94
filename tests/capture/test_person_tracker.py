"""The person tracker (pure numpy): stable ids through crossings, occlusions, re-entries and gating."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from pmr_stream.capture.person_tracker import PersonTracker, TrackerOptions, box_iou

HEIGHT = 200.0  # a person's box height, pixels


def _boxes(centres: npt.ArrayLike, height: float = HEIGHT) -> npt.NDArray[np.float64]:
    """Boxes around hip centres: 0.4 heights wide, from 0.5 above the hip to 0.5 below."""
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    return np.stack([c[:, 0] - 0.2 * height, c[:, 1] - 0.5 * height, c[:, 0] + 0.2 * height,
                     c[:, 1] + 0.5 * height], axis=1)  # fmt: skip


def _step(tr: PersonTracker, frame: int, centres: list[tuple[float, float]], **kw: object) -> list[int]:
    return tr.update(
        frame, np.asarray(centres, dtype=np.float64).reshape(-1, 2), _boxes(centres), **kw
    ).tolist()  # type: ignore[arg-type]


def test_still_persons_keep_their_ids_whatever_the_detection_order() -> None:
    tr = PersonTracker(3)
    people = [(100.0, 300.0), (400.0, 300.0), (700.0, 310.0)]
    first = _step(tr, 0, people)
    assert sorted(first) == [0, 1, 2]
    rng = np.random.default_rng(0)
    for f in range(1, 30):
        order = rng.permutation(3)
        jitter = rng.normal(0.0, 2.0, (3, 2))
        ids = _step(tr, f, [tuple(np.add(people[k], jitter[k])) for k in order])  # type: ignore[misc]
        assert ids == [first[k] for k in order]
    assert tr.started == 3 and tr.refused == 0


def test_two_persons_crossing_keep_their_ids() -> None:
    """A walks right, B walks left at the same depth; they meet at x = 400 (one hides the other
    for three frames) and walk on: each id stays on its own walker (the velocity carries it)."""
    tr = PersonTracker(2)
    ids_a, ids_b = [], []
    for f in range(41):
        xa, xb = 200.0 + 10.0 * f, 600.0 - 10.0 * f
        hidden = 19 <= f <= 21  # B behind A
        dets = [(xa, 300.0)] if hidden else [(xb, 300.0), (xa, 300.0)]
        ids = _step(tr, f, dets)
        ids_a.append(ids[-1])
        if not hidden:
            ids_b.append(ids[0])
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]
    assert tr.started == 2


def test_short_occlusion_keeps_the_id_a_long_one_does_not() -> None:
    opts = TrackerOptions(max_missed=5, reuse_after=8)
    tr = PersonTracker(2, opts)
    assert _step(tr, 0, [(300.0, 300.0)]) == [0]
    for f in range(1, 6):  # unseen for 5 frames (= max_missed)
        assert _step(tr, f, []) == []
    assert _step(tr, 6, [(302.0, 300.0)]) == [0]  # re-associated
    assert tr.started == 1
    for f in range(7, 13):  # unseen for 6 frames > max_missed: the track is dropped
        _step(tr, f, [])
    assert _step(tr, 13, [(300.0, 300.0)]) == [1]  # a new track; slot 0 rests (reuse_after)
    assert tr.started == 2


def test_a_freed_slot_rests_before_another_person_takes_it() -> None:
    tr = PersonTracker(1, TrackerOptions(max_missed=2, reuse_after=10))
    assert _step(tr, 0, [(300.0, 300.0)]) == [0]
    seen = {f: _step(tr, f, [(900.0, 300.0)]) for f in range(1, 13)}  # someone else, far away
    assert all(v == [-1] for f, v in seen.items() if f <= 10)  # slot 0 held, then resting
    assert seen[11] == [0] and seen[12] == [0]  # 11 frames after the last sighting: reused
    assert tr.refused == 10


def test_gating_never_hands_an_id_to_someone_far_away() -> None:
    """A vanishes and B appears 2 body heights away in the same frame: B is not A."""
    tr = PersonTracker(4)
    for f in range(5):
        assert _step(tr, f, [(300.0, 300.0)]) == [0]
    assert _step(tr, 5, [(300.0 + 2 * HEIGHT, 300.0)]) == [1]
    # a jump within the gate (0.3 heights) continues the track
    assert _step(tr, 6, [(300.0 + 2 * HEIGHT + 0.3 * HEIGHT, 300.0)]) == [1]


def test_size_change_counts_against_association() -> None:
    """Same spot, but twice as tall (a nearer person): |log 2| = 0.69 > the gate of 0.5."""
    tr = PersonTracker(2)
    _step(tr, 0, [(300.0, 300.0)])
    ids = tr.update(1, [(300.0, 300.0)], _boxes([(300.0, 300.0)], 2 * HEIGHT)).tolist()
    assert ids == [1]


def test_more_persons_than_slots_keeps_the_best_scored() -> None:
    tr = PersonTracker(2)
    centres = [(100.0, 300.0), (400.0, 300.0), (700.0, 300.0)]
    ids = _step(tr, 0, centres, scores=np.array([0.5, 0.9, 0.7]))
    assert ids == [-1, 0, 1] and tr.refused == 1


def test_duplicate_detections_of_one_person_get_one_id() -> None:
    tr = PersonTracker(3)
    ids = _step(tr, 0, [(300.0, 300.0), (305.0, 302.0)], scores=np.array([0.4, 0.8]))
    assert ids == [-1, 0] and tr.duplicates == 1


def test_skipped_frames_are_predicted_over() -> None:
    tr = PersonTracker(1)
    for f in range(5):
        assert _step(tr, f, [(100.0 + 20.0 * f, 300.0)]) == [0]
    # frames 5..9 dropped by the camera; the walker went on at 20 px per frame
    assert _step(tr, 10, [(300.0, 300.0)]) == [0]


def test_box_iou() -> None:
    a = np.array([[0.0, 0.0, 2.0, 2.0]])
    b = np.array([[1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 2.0, 2.0]])
    assert np.allclose(box_iou(a, b), [[1 / 7, 0.0, 1.0]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gate": 0.0}, "gate"),
        ({"gate": float("nan")}, "gate"),
        ({"max_missed": -1}, "max_missed"),
        ({"max_missed": 10, "reuse_after": 5}, "reuse_after"),
        ({"duplicate_iou": 0.0}, "duplicate_iou"),
        ({"velocity_smoothing": 1.5}, "velocity_smoothing"),
    ],
)
def test_bad_options(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrackerOptions(**kwargs)  # type: ignore[arg-type]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="max_persons"):
        PersonTracker(0)
    tr = PersonTracker(2)
    with pytest.raises(ValueError, match="boxes must have shape"):
        tr.update(0, [(1.0, 2.0)], np.zeros((2, 4)))
    with pytest.raises(ValueError, match="scores must have shape"):
        tr.update(0, [(1.0, 2.0)], _boxes([(1.0, 2.0)]), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        tr.update(0, [(np.nan, 2.0)], _boxes([(1.0, 2.0)]))
    tr.update(3, [(1.0, 2.0)], _boxes([(1.0, 2.0)]))
    with pytest.raises(ValueError, match="not after the last frame 3"):
        tr.update(3, [(1.0, 2.0)], _boxes([(1.0, 2.0)]))
