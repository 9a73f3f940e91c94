"""The stand-in dataset: what to generate, the data in memory, and its files.

The default file is :data:`DEFAULT_STANDIN_PATH`; :func:`write_clips_npz` is the one
writer of the stand-in's ``.npz`` layout (the stand-in itself and caches of loaded clips).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import CROSS_VIEW_TEST_CAMERAS, CROSS_VIEW_TRAIN_CAMERAS
from pmr_stream.synth.actions import ACTION_NAMES, action_index
from pmr_stream.synth.arrays import Array32
from pmr_stream.synth.body import _BONE_NAMES, Performer, make_performers
from pmr_stream.synth.camera_noise import CAMERA_YAW_DEG
from pmr_stream.synth.clips import SETUP, SynthClip, _take, _view

log = logging.getLogger(__name__)

#: Where the stand-in's ``.npz`` goes unless told otherwise (relative to the working
#: directory); its ``.skeleton`` folder is the same path without the suffix (``data/standin``).
DEFAULT_STANDIN_PATH: Final[Path] = Path("data/standin.npz")
#: Version of the stand-in's npz layout (see :func:`write_clips_npz`).
NPZ_FORMAT_VERSION: Final[int] = 1
#: Gender label convention of the dataset files.
GENDER_LABELS: Final[dict[str, int]] = {"female": 0, "male": 1}


@dataclass(frozen=True)
class StandinSpec:
    """What stand-in dataset to generate (the default: NTU-like, 40 performers x
    15 actions x 3 cameras x 2 replications = 3600 clips)."""

    performers: int = 40
    actions: tuple[str, ...] = ACTION_NAMES
    cameras: tuple[int, ...] = (1, 2, 3)
    replications: int = 2
    seed: int = 0
    setup: int = SETUP
    noise: bool = True

    def __post_init__(self) -> None:
        for a in self.actions:
            action_index(a)
        for c in self.cameras:
            if c not in CAMERA_YAW_DEG:
                raise ValueError(f"cameras must be among 1, 2, 3, got {c}")
        if self.performers < 1 or self.replications < 1:
            raise ValueError("need at least one performer and one replication")

    @property
    def num_clips(self) -> int:
        return self.performers * len(self.actions) * len(self.cameras) * self.replications


@dataclass
class StandinData:
    """A generated stand-in dataset held in memory.

    Clip ``i`` is ``joints[offsets[i]:offsets[i + 1]]`` (``(T_i, 25, 3)`` float32
    metres, Kinect camera coordinates). Labels per clip: ``action`` (0-based
    index into ``action_names``, i.e. ``A - 1``), ``performer`` (0-based,
    ``P - 1``), ``gender`` (1 male, 0 female), ``camera`` and ``replication``
    (1-based, as in the file names), ``setup``; ``names`` the file stems.
    """

    joints: Array32
    confidence: Array32
    offsets: npt.NDArray[np.int64]
    action: npt.NDArray[np.int64]
    performer: npt.NDArray[np.int64]
    gender: npt.NDArray[np.int64]
    camera: npt.NDArray[np.int64]
    replication: npt.NDArray[np.int64]
    setup: npt.NDArray[np.int64]
    names: npt.NDArray[np.str_]
    action_names: tuple[str, ...]
    performers: list[Performer]
    seed: int

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def clip(self, i: int) -> Array32:
        """Joints ``(T_i, 25, 3)`` of clip ``i`` (a view)."""
        return self.joints[self.offsets[i] : self.offsets[i + 1]]

    def clip_confidence(self, i: int) -> Array32:
        return self.confidence[self.offsets[i] : self.offsets[i + 1]]

    @property
    def split(self) -> npt.NDArray[np.str_]:
        """``"train"`` (cameras 2, 3) or ``"test"`` (camera 1) per clip: the paper's cross-view split."""
        return np.where(np.isin(self.camera, CROSS_VIEW_TRAIN_CAMERAS), "train", "test").astype("<U5")

    def labels_dict(self) -> dict[str, object]:
        """The content of ``labels.json``: action names and the split."""
        return {
            "dataset": "pmr-stream stand-in for NTU RGB+D (synthetic)",
            "format_version": NPZ_FORMAT_VERSION,
            "seed": self.seed,
            "action_names": list(self.action_names),
            "action_label": "A - 1 (0-based index into action_names)",
            "performer_label": "P - 1",
            "gender_labels": GENDER_LABELS,
            "split": {
                "name": "cross-view",
                "train_cameras": list(CROSS_VIEW_TRAIN_CAMERAS),
                "test_cameras": list(CROSS_VIEW_TEST_CAMERAS),
            },
            "num_clips": len(self),
        }

    def performers_dict(self) -> dict[str, object]:
        """The content of ``performers.json``: one entry per performer (id, sex, height, ...)."""
        return {
            "performers": [
                {"id": p.id, "gender": p.sex, "gender_label": p.gender_label, "height_m": p.height_m,
                 "handedness": p.handedness, "bone_lengths_m": [round(b, 5) for b in p.bone_lengths]}
                for p in self.performers
            ],
            "bone_names": list(_BONE_NAMES),
        }  # fmt: skip

    def save_npz(self, path: str | Path) -> Path:
        """Write one ``.npz`` (:func:`write_clips_npz`) with everything the stand-in holds.

        Beside the clips and labels: ``confidence`` (sum T, 25) float16 (values 0.5
        and 1.0), ``setup`` and ``split`` (N,), the performer table ``performer_id``,
        ``performer_gender`` (unicode), ``performer_height_m``,
        ``performer_handedness``, ``performer_bone_lengths`` (P, 24), and
        ``train_cameras``, ``test_cameras``, ``seed``, ``format_version``.
        """
        return write_clips_npz(
            path, self.joints, self.offsets, self.names, self.action_names,
            labels={"action": self.action, "performer": self.performer, "gender": self.gender,
                    "camera": self.camera, "replication": self.replication},
            extra={
                "confidence": self.confidence.astype(np.float16), "setup": self.setup, "split": self.split,
                "performer_id": np.array([p.id for p in self.performers], dtype=np.int64),
                "performer_gender": np.array([p.sex for p in self.performers], dtype="<U6"),
                "performer_height_m": np.array([p.height_m for p in self.performers], dtype=np.float64),
                "performer_handedness": np.array([p.handedness for p in self.performers], dtype="<U5"),
                "performer_bone_lengths": np.array([p.bone_lengths for p in self.performers], dtype=np.float64),
                "train_cameras": np.array(CROSS_VIEW_TRAIN_CAMERAS, dtype=np.int64),
                "test_cameras": np.array(CROSS_VIEW_TEST_CAMERAS, dtype=np.int64),
                "seed": np.int64(self.seed), "format_version": np.int64(NPZ_FORMAT_VERSION),
            },
        )  # fmt: skip

    def write_skeletons(
        self, out_dir: str | Path, *, progress: bool = False, workers: int | None = None
    ) -> Path:
        """Write one ``SsssCcccPpppRrrrAaaa.skeleton`` per clip plus ``labels.json`` and ``performers.json``.

        Formatting the text is the slow part (about 30 ms a clip), so it runs in
        ``workers`` processes (default: one per CPU; forked, POSIX only, else serial).
        """
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        n = len(self)
        if workers is None:
            workers = os.cpu_count() or 1
        workers = max(1, min(workers, n // 50 or 1))
        chunks = [range(i, min(i + 25, n)) for i in range(0, n, 25)]
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            global _WRITE_JOB
            _WRITE_JOB = (self, d)
            try:
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    done = pool.imap_unordered(_write_chunk, [(c.start, c.stop) for c in chunks])
                    for k in _progress_iter(
                        done, progress, "writing .skeleton", total=n, unit_of=lambda c: c
                    ):
                        _ = k
            finally:
                _WRITE_JOB = None
        else:
            for c in _progress_iter(iter(chunks), progress, "writing .skeleton", total=n, unit_of=len):
                _write_range(self, d, c.start, c.stop)
        (d / "labels.json").write_text(json.dumps(self.labels_dict(), indent=2) + "\n")
        (d / "performers.json").write_text(json.dumps(self.performers_dict(), indent=2) + "\n")
        return d


def write_clips_npz(
    path: str | os.PathLike[str],
    joints: npt.ArrayLike,
    offsets: npt.ArrayLike,
    names: Sequence[str] | npt.ArrayLike,
    action_names: Sequence[str],
    *,
    labels: Mapping[str, npt.ArrayLike],
    extra: Mapping[str, npt.ArrayLike] | None = None,
) -> Path:
    """Write clips in the stand-in's ``.npz`` layout (no pickled objects: loads with ``allow_pickle=False``).

    Args:
        path: the file (its folder is created).
        joints: ``(sum T, 25, 3)`` metres, the clips one after another; stored float32.
        offsets: ``(N + 1,)``: clip ``i`` is ``joints[offsets[i]:offsets[i + 1]]``; stored int64.
        names: ``(N,)`` file stems (``SsssCcccPpppRrrrAaaa``); stored ``<U20``.
        action_names: ``(A,)``, index ``a`` is the name of action label ``a``; stored unicode.
        labels: ``(N,)`` int64 label arrays: ``action``, ``performer``, ``gender``,
            ``camera``, ``replication``.
        extra: further arrays stored under their keys as they are.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    width = max((len(a) for a in action_names), default=1)
    np.savez(
        out,
        joints=np.asarray(joints, dtype=np.float32),
        offsets=np.asarray(offsets, dtype=np.int64),
        **{k: np.asarray(v) for k, v in labels.items()},
        names=np.asarray(names).astype("<U20"),
        action_names=np.array(action_names, dtype=f"<U{width}"),
        **{k: np.asarray(v) for k, v in (extra or {}).items()},
    )
    return out


_BODY_ID_BASE: Final[int] = 72057594037927936
_WRITE_JOB: tuple[StandinData, Path] | None = None


def _write_range(data: StandinData, out_dir: Path, start: int, stop: int) -> int:
    from pmr_stream.formats.ntu import NtuSkeleton, write_skeleton

    for i in range(start, stop):
        # micrometre decimals: short text, and the writer's float32 round trip is skipped (3x faster)
        xyz = np.round(data.clip(i).astype(np.float64), 6)
        skel = NtuSkeleton.from_arrays(
            xyz[:, None], data.clip_confidence(i)[:, None],
            body_ids=[_BODY_ID_BASE + int(data.performer[i])], source=str(data.names[i]),
        )  # fmt: skip
        write_skeleton(out_dir / f"{data.names[i]}.skeleton", skel)
    return stop - start


def _write_chunk(bounds: tuple[int, int]) -> int:
    assert _WRITE_JOB is not None
    return _write_range(_WRITE_JOB[0], _WRITE_JOB[1], *bounds)


def _progress_iter(
    it: Iterator[Any], enabled: bool, desc: str, *, total: int, unit_of: Callable[[Any], int]
) -> Iterator[Any]:
    """Iterate ``it``, advancing a tqdm bar by ``unit_of(item)`` clips per item when ``enabled``."""
    if not enabled:
        yield from it
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="clip") as bar:
        for item in it:
            bar.update(unit_of(item))
            yield item


def generate_standin(spec: StandinSpec = StandinSpec(), *, progress: bool = False) -> StandinData:
    """Generate the stand-in dataset in memory (deterministic by ``spec.seed``).

    Clips are ordered by performer, action, replication, camera.
    """
    cast = make_performers(spec.performers, spec.seed)
    clips: list[SynthClip] = []
    total = spec.num_clips
    t0 = time.perf_counter()

    def views() -> Iterator[SynthClip]:
        for p in cast:
            for a in spec.actions:
                for r in range(1, spec.replications + 1):
                    take = _take(p, a, r, spec.seed, spec.setup)
                    for c in spec.cameras:
                        yield _view(take, c, spec.noise)

    for clip in _progress_iter(views(), progress, "generating stand-in", total=total, unit_of=lambda _: 1):
        clips.append(clip)
    lengths = np.array([c.num_frames for c in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    data = StandinData(
        joints=np.concatenate([c.joints for c in clips]).astype(np.float32),
        confidence=np.concatenate([c.confidence for c in clips]).astype(np.float32),
        offsets=offsets,
        action=np.array([c.action - 1 for c in clips], dtype=np.int64),
        performer=np.array([c.performer - 1 for c in clips], dtype=np.int64),
        gender=np.array([cast[c.performer - 1].gender_label for c in clips], dtype=np.int64),
        camera=np.array([c.camera for c in clips], dtype=np.int64),
        replication=np.array([c.replication for c in clips], dtype=np.int64),
        setup=np.array([c.setup for c in clips], dtype=np.int64),
        names=np.array([c.name for c in clips], dtype="<U20"),
        action_names=ACTION_NAMES,
        performers=cast,
        seed=spec.seed,
    )
    log.info(
        "generated %d stand-in clips (%d frames) in %.1f s",
        len(clips),
        int(offsets[-1]),
        time.perf_counter() - t0,
    )
    return data


def generate_dataset(
    spec: StandinSpec = StandinSpec(),
    out_dir: str | Path | None = None,
    fmt: Literal["skeleton", "npz"] = "skeleton",
    progress: bool = True,
) -> Path:
    """Generate the stand-in and write it.

    ``fmt="skeleton"``: ``out_dir`` gets one ``SsssCcccPpppRrrrAaaa.skeleton``
    per clip (setup 1, ``A`` = 1-based index in :data:`ACTION_NAMES`) plus
    ``labels.json`` and ``performers.json``; returns ``out_dir``.
    ``fmt="npz"``: one file (``out_dir`` itself when it ends in ``.npz``, else
    ``out_dir/standin.npz``, see :meth:`StandinData.save_npz`); returns its path.
    ``out_dir=None``: :data:`DEFAULT_STANDIN_PATH` (``.npz``) or that path without
    its suffix (``.skeleton`` folder).
    """
    if fmt not in ("skeleton", "npz"):
        raise ValueError(f"fmt must be 'skeleton' or 'npz', got {fmt!r}")
    if out_dir is None:
        out = DEFAULT_STANDIN_PATH if fmt == "npz" else DEFAULT_STANDIN_PATH.with_suffix("")
    else:
        out = Path(out_dir)
    data = generate_standin(spec, progress=progress)
    if fmt == "npz":
        path = out if out.suffix == ".npz" else out / DEFAULT_STANDIN_PATH.name
        return data.save_npz(path)
    return data.write_skeletons(out, progress=progress)
