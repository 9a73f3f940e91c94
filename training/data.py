"""The one dataset loader for training and evaluation.

Reads either

* the stand-in (:mod:`pmr_stream.synth`): one ``.npz`` (``generate_dataset(...,
  fmt="npz")``), or a directory of stand-in ``.skeleton`` files with its
  ``labels.json`` and ``performers.json``; or
* real NTU RGB+D 60: the official flat folder ``nturgb+d_skeletons/`` of
  ``SsssCcccPpppRrrrAaaa.skeleton`` files (optionally with the official
  ``NTU_RGBD_samples_with_missing_skeletons.txt`` to skip those samples).

For NTU-60 it does what the PMR paper does (see ``../shared/docs/PMR_FACTS.md``): drop the
two-person actions A050-A060, keep the main body with SGN's denoising idea
(:func:`select_main_body`), label ``action = A - 1``, ``identity = P - 1`` and the
gender from a performers table, and split cross-view (train cameras 2, 3; test
camera 1). The per-performer gender table of NTU-60 is not in our docs and could
not be found in public code (the PMR notebooks read a ``Genders.csv`` that their
repository does not contain), so NTU-60 needs ``genders=`` (a CSV, see
:func:`load_genders_csv`) or ``allow_unknown_gender=True`` (gender -1).

Every clip is normalised like the paper: SpineMid (joint 1) of the first frame is
subtracted from all frames (:func:`pmr_stream.skeleton.normalize`); no rotation,
no scaling. The torch datasets over the clips (75-frame windows, the paper's
quadruplets) are in :mod:`training.datasets`.

Labels throughout: ``action`` and ``performer`` 0-based class indices (``A - 1``,
``P - 1``), ``gender`` 1 male / 0 female (-1 unknown), ``camera`` and
``replication`` as in the file names (1-based).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from pmr_stream.formats.ntu import read_skeleton
from pmr_stream.formats.ntu_dataset import NtuName, parse_ntu_name
from pmr_stream.skeleton import (
    CROSS_VIEW_TEST_CAMERAS,
    CROSS_VIEW_TRAIN_CAMERAS,
    J,
    normalize,
)
from pmr_stream.synth.dataset import DEFAULT_STANDIN_PATH, write_clips_npz

log = logging.getLogger(__name__)

Array32 = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
Split = Literal["train", "test", "all"]
Crop = Literal["random", "centre", "all"]

#: NTU RGB+D 60 action classes A001-A060 (from the dataset's paper).
NTU60_ACTION_NAMES: Final[tuple[str, ...]] = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
    "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "reach into pocket", "hopping (one foot jumping)", "jump up",
    "make a phone call/answer phone", "playing with phone/tablet", "typing on a keyboard",
    "pointing to something with finger", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute",
    "put the palms together", "cross hands in front (say stop)", "sneeze/cough", "staggering",
    "falling", "touch head (headache)", "touch chest (stomachache/heart pain)",
    "touch back (backache)", "touch neck (neckache)", "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
    "kicking other person", "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person", "giving something to other person",
    "touch other person's pocket", "handshaking", "walking towards each other",
    "walking apart from each other",
)  # fmt: skip
#: Actions A050-A060 involve two people; PMR drops them, leaving A001-A049.
NTU60_FIRST_TWO_PERSON_ACTION: Final[int] = 50
NTU60_NUM_PERFORMERS: Final[int] = 40
#: Name of the official list of samples with missing skeletons.
NTU_MISSING_LIST: Final[str] = "NTU_RGBD_samples_with_missing_skeletons.txt"


@dataclass(frozen=True)
class DataConfig:
    """What to load.

    Attributes:
        dataset: ``"standin"`` or ``"ntu60"``.
        path: stand-in ``.npz`` or directory of ``.skeleton`` files (for either
            dataset); a ``.npz`` is read as such whatever ``dataset`` says
            (e.g. a cache written by :meth:`ClipSet.save_npz`).
        split: ``"train"`` (cameras 2, 3), ``"test"`` (camera 1) or ``"all"``.
        crop: how :func:`training.datasets.make_dataset` brings clips to 75 frames: ``"random"``
            (training), ``"centre"`` or ``"all"`` windows (evaluation).
        seed: seed of the random crops.
        genders: NTU-60: CSV with each performer's gender (:func:`load_genders_csv`).
        allow_unknown_gender: NTU-60 without ``genders``: label gender -1
            instead of refusing.
        missing: NTU-60: the official list of samples with missing skeletons;
            default: ``NTU_RGBD_samples_with_missing_skeletons.txt`` next to or
            above ``path`` when it exists.
        stride: window stride of ``crop="all"`` (default 75, no overlap).
        workers: processes reading ``.skeleton`` files (0: in this process).
        cache: NTU-60 / ``.skeleton`` directories: an ``.npz`` to read the
            preprocessed clips from, written (with all cameras) after the
            first load. Delete it when the data or ``max_files`` change.
        max_files: read at most this many files (quick runs and tests).
    """

    dataset: Literal["standin", "ntu60"] = "standin"
    path: str | os.PathLike[str] = DEFAULT_STANDIN_PATH
    split: Split = "train"
    crop: Crop = "random"
    seed: int = 0
    genders: str | os.PathLike[str] | None = None
    allow_unknown_gender: bool = False
    missing: str | os.PathLike[str] | None = None
    train_cameras: tuple[int, ...] = CROSS_VIEW_TRAIN_CAMERAS
    test_cameras: tuple[int, ...] = CROSS_VIEW_TEST_CAMERAS
    stride: int | None = None
    workers: int = 0
    cache: str | os.PathLike[str] | None = None
    max_files: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in ("standin", "ntu60"):
            raise ValueError(f"dataset must be 'standin' or 'ntu60', got {self.dataset!r}")
        if self.split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {self.split!r}")
        if self.crop not in ("random", "centre", "all"):
            raise ValueError(f"crop must be 'random', 'centre' or 'all', got {self.crop!r}")

    def cameras(self) -> tuple[int, ...] | None:
        """Cameras of the configured split (``None`` for all)."""
        return {"train": self.train_cameras, "test": self.test_cameras, "all": None}[self.split]


@dataclass
class ClipSet:
    """Variable-length normalised clips and their labels.

    ``clips[i]`` is ``(T_i, 25, 3)`` float32 metres with SpineMid of its first
    frame at the origin. Label arrays are ``(N,)`` int64 (see the module docstring).
    """

    clips: list[Array32]
    action: IntArray
    performer: IntArray
    gender: IntArray
    camera: IntArray
    replication: IntArray
    names: list[str]
    action_names: tuple[str, ...]
    num_actions: int
    num_performers: int
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.clips)
        for key in ("action", "performer", "gender", "camera", "replication"):
            arr = np.asarray(getattr(self, key), dtype=np.int64)
            if arr.shape != (n,):
                raise ValueError(f"{key} must have shape ({n},), got {arr.shape}")
            setattr(self, key, arr)
        if len(self.names) != n:
            raise ValueError(f"names must have {n} entries, got {len(self.names)}")

    def __len__(self) -> int:
        return len(self.clips)

    def subset(self, keep: npt.ArrayLike) -> ClipSet:
        """The clips where the boolean mask (or index array) ``keep`` selects."""
        idx = np.arange(len(self))[np.asarray(keep)] if np.asarray(keep).dtype == bool else np.asarray(keep)
        return ClipSet(
            clips=[self.clips[i] for i in idx], action=self.action[idx], performer=self.performer[idx],
            gender=self.gender[idx], camera=self.camera[idx], replication=self.replication[idx],
            names=[self.names[i] for i in idx], action_names=self.action_names, num_actions=self.num_actions,
            num_performers=self.num_performers, source=self.source,
        )  # fmt: skip

    def lengths(self) -> IntArray:
        return np.array([len(c) for c in self.clips], dtype=np.int64)

    def save_npz(self, path: str | os.PathLike[str]) -> Path:
        """Write the clips as one ``.npz`` in the stand-in's layout (readable by :func:`load_clips`)."""
        joints = np.concatenate(self.clips) if self.clips else np.zeros((0, J, 3), np.float32)
        return write_clips_npz(
            path, joints, np.concatenate([[0], np.cumsum(self.lengths())]), self.names, self.action_names,
            labels={"action": self.action, "performer": self.performer, "gender": self.gender,
                    "camera": self.camera, "replication": self.replication},
            extra={"num_performers": np.int64(self.num_performers), "num_actions": np.int64(self.num_actions)},
        )  # fmt: skip


# ----------------------------------------------------------------------------- NTU body selection


@dataclass(frozen=True)
class DenoiseConfig:
    """Thresholds of the main-body selection (the values SGN's NTU preprocessing uses).

    A body tracked in fewer than ``min_frames`` frames is noise; so is one whose
    joints spread wider than ``spread_ratio`` times their height in more than
    ``max_noisy_fraction`` of its frames (Kinect ghosts on furniture are wide
    and flat); when several bodies remain, those whose motion (sum over
    coordinates of the variance over frames, m^2) lies outside ``motion_range``
    are dropped too.
    """

    min_frames: int = 11
    spread_ratio: float = 0.8
    max_noisy_fraction: float = 0.69754
    motion_range: tuple[float, float] = (0.089925, 2.0)


def _body_motion(x: Array32) -> float:
    """Sum over the 75 coordinates of their variance over frames (m^2)."""
    return float(np.var(x.reshape(len(x), -1).astype(np.float64), axis=0).sum()) if len(x) > 1 else 0.0


def select_main_body(
    joints: npt.ArrayLike, present: npt.ArrayLike, cfg: DenoiseConfig = DenoiseConfig()
) -> tuple[Array32, npt.NDArray[np.int64]]:
    """Pick the performer's skeleton out of a multi-body Kinect recording (SGN's idea).

    Args:
        joints: ``(T, P, 25, 3)`` metres, bodies as :meth:`NtuSkeleton.to_arrays` gives them.
        present: ``(T, P)`` bool.

    Drops noise bodies (too short, implausibly wide; see :class:`DenoiseConfig`),
    takes the remaining body with the most motion (among those with plausible
    motion) as the performer and fills frames it misses with other remaining
    bodies that never overlap it in time (Kinect often changes the body ID of
    one person). Frames without the performer are dropped.

    Returns:
        ``(clip (T', 25, 3) float32, the kept frame indices (T',))``; ``T' = 0``
        when no body was tracked at all.
    """
    x = np.asarray(joints, dtype=np.float32)
    pres = np.asarray(present, dtype=bool)
    n_t, n_p = pres.shape
    if n_p == 0 or not pres.any():
        return np.zeros((0, J, 3), np.float32), np.zeros(0, np.int64)
    bodies = [p for p in range(n_p) if pres[:, p].any()]
    if len(bodies) > 1:
        long_enough = [p for p in bodies if pres[:, p].sum() >= cfg.min_frames]
        bodies = long_enough or bodies
    if len(bodies) > 1:
        plausible = []
        for p in bodies:
            xb = x[pres[:, p], p]  # (n, 25, 3)
            spread_x = xb[..., 0].max(1) - xb[..., 0].min(1)
            spread_y = xb[..., 1].max(1) - xb[..., 1].min(1)
            noisy = spread_x > cfg.spread_ratio * spread_y
            if noisy.mean() <= cfg.max_noisy_fraction:
                plausible.append(p)
        bodies = plausible or bodies
    motion = {p: _body_motion(x[pres[:, p], p]) for p in bodies}
    candidates = bodies
    if len(bodies) > 1:
        lo, hi = cfg.motion_range
        candidates = [p for p in bodies if lo <= motion[p] <= hi] or bodies
    main = max(candidates, key=lambda p: (motion[p], -p))
    track = x[:, main].copy()
    have = pres[:, main].copy()
    # fragments of the same person under another body ID (no motion test: a short fragment may hardly move)
    for p in sorted(bodies, key=lambda q: (-motion[q], q)):
        if p != main and not (pres[:, p] & have).any():
            track[pres[:, p]] = x[pres[:, p], p]
            have |= pres[:, p]
    frames = np.flatnonzero(have).astype(np.int64)
    return track[frames], frames


# ----------------------------------------------------------------------------- genders


def load_genders_csv(path: str | os.PathLike[str]) -> dict[int, int]:
    """Performer genders from a CSV: ``{performer (1-based): 1 male / 0 female}``.

    Accepted layouts: a header with a performer column (``performer``, ``P``,
    ``id``, ``subject`` or ``actor``; values like ``3`` or ``P003``) and a gender
    column (``gender`` or ``sex``; ``M``/``F``, ``male``/``female`` or ``1``/``0``),
    or just a gender column, row ``i`` being performer ``i + 1`` (the layout of
    the ``Genders.csv`` the PMR notebooks read).
    """
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: empty genders file")
    header = [c.strip().lower() for c in rows[0]]
    gender_col = next((i for i, h in enumerate(header) if h in ("gender", "sex")), None)
    if gender_col is None:
        raise ValueError(f"{path}: no 'gender' (or 'sex') column in the header {rows[0]}")
    perf_col = next(
        (i for i, h in enumerate(header) if h in ("performer", "p", "id", "subject", "actor", "person")), None
    )
    out: dict[int, int] = {}
    for k, row in enumerate(rows[1:]):
        g = row[gender_col].strip().lower()
        if g in ("m", "male", "1"):
            value = 1
        elif g in ("f", "female", "0"):
            value = 0
        else:
            raise ValueError(f"{path} line {k + 2}: gender {row[gender_col]!r} is not M/F")
        if perf_col is None:
            performer = k + 1
        else:
            digits = re.sub(r"\D", "", row[perf_col])
            if not digits:
                raise ValueError(f"{path} line {k + 2}: performer {row[perf_col]!r} is not a number")
            performer = int(digits)
        out[performer] = value
    return out


# ----------------------------------------------------------------------------- loading


def load_clips(config: DataConfig) -> ClipSet:
    """Load the clips of ``config.split``, normalised (see the module docstring)."""
    path = Path(config.path)
    if config.cache is not None and Path(config.cache).is_file():
        log.info("reading cached clips from %s", config.cache)
        return _select_split(_load_npz(Path(config.cache)), config)
    if path.suffix == ".npz" and path.is_file():
        clips = _load_npz(path)
    elif path.is_dir():
        # a cache must hold every camera, whatever split is asked for now
        read = replace(config, split="all") if config.cache is not None else config
        clips = _load_ntu60_dir(path, read) if config.dataset == "ntu60" else _load_standin_dir(path, read)
        if config.cache is not None:
            clips.save_npz(config.cache)
            log.info("cached %d clips in %s", len(clips), config.cache)
    else:
        raise FileNotFoundError(
            f"no dataset at {path} (expected a .npz file or a directory of .skeleton files)"
        )
    return _select_split(clips, config)


def _select_split(clips: ClipSet, config: DataConfig) -> ClipSet:
    cams = config.cameras()
    if cams is None:
        return clips
    return clips.subset(np.isin(clips.camera, cams))


def _load_npz(path: Path) -> ClipSet:
    with np.load(path, allow_pickle=False) as z:
        joints = z["joints"]
        offsets = z["offsets"]
        names = [str(n) for n in z["names"]]
        action_names = tuple(str(a) for a in z["action_names"])
        if "num_performers" in z:
            num_performers = int(z["num_performers"])
        elif "performer_id" in z:
            num_performers = int(len(z["performer_id"]))
        else:
            num_performers = int(z["performer"].max()) + 1
        num_actions = int(z["num_actions"]) if "num_actions" in z else len(action_names)
        clips = [normalize(joints[offsets[i] : offsets[i + 1]])[0] for i in range(len(offsets) - 1)]
        return ClipSet(
            clips=clips, action=z["action"], performer=z["performer"], gender=z["gender"], camera=z["camera"],
            replication=z["replication"], names=names, action_names=action_names, num_actions=num_actions,
            num_performers=num_performers, source=str(path),
        )  # fmt: skip


def _skeleton_files(directory: Path, config: DataConfig) -> list[tuple[Path, NtuName]]:
    files = []
    for p in sorted(directory.glob("*.skeleton")):
        try:
            files.append((p, parse_ntu_name(p)))
        except ValueError:
            log.warning("skipping %s: not an SsssCcccPpppRrrrAaaa name", p.name)
    cams = config.cameras()
    if cams is not None:
        files = [(p, n) for p, n in files if n.camera in cams]
    return files


def _read_main_body(path: str) -> Array32:
    """Worker: the normalised main-body clip of one ``.skeleton`` file (``(0, 25, 3)`` if none)."""
    joints, _, present, _ = read_skeleton(path).to_arrays()
    clip, _ = select_main_body(joints, present)
    if len(clip) == 0:
        return clip
    return normalize(clip)[0]


def _read_all(paths: Sequence[Path], workers: int) -> list[Array32]:
    if workers and workers > 1 and len(paths) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(_read_main_body, [str(p) for p in paths], chunksize=16))
    return [_read_main_body(str(p)) for p in paths]


def _assemble(
    files: Sequence[tuple[Path, NtuName]], clips: Sequence[Array32], gender_of: dict[int, int] | None,
    action_names: tuple[str, ...], num_actions: int, num_performers: int, source: str,
) -> ClipSet:  # fmt: skip
    keep = [k for k, c in enumerate(clips) if len(c) > 0]
    for k in set(range(len(clips))) - set(keep):
        log.warning("%s: no body tracked, skipped", files[k][0].name)
    names = [files[k][1] for k in keep]
    gender = [(gender_of.get(n.performer, -1) if gender_of is not None else -1) for n in names]
    return ClipSet(
        clips=[clips[k] for k in keep], action=np.array([n.action - 1 for n in names], dtype=np.int64),
        performer=np.array([n.performer - 1 for n in names], dtype=np.int64), gender=np.array(gender, dtype=np.int64),
        camera=np.array([n.camera for n in names], dtype=np.int64),
        replication=np.array([n.replication for n in names], dtype=np.int64), names=[n.stem for n in names],
        action_names=action_names, num_actions=num_actions, num_performers=num_performers, source=source,
    )  # fmt: skip


def _load_standin_dir(directory: Path, config: DataConfig) -> ClipSet:
    labels_path, perf_path = directory / "labels.json", directory / "performers.json"
    if not labels_path.is_file() or not perf_path.is_file():
        raise FileNotFoundError(
            f"{directory}: a stand-in directory needs labels.json and performers.json "
            "(for real NTU-60 use dataset='ntu60')"
        )
    labels = json.loads(labels_path.read_text())
    performers = json.loads(perf_path.read_text())["performers"]
    gender_of = {int(p["id"]): int(p["gender_label"]) for p in performers}
    files = _skeleton_files(directory, config)[: config.max_files]
    clips = _read_all([p for p, _ in files], config.workers)
    names = tuple(labels["action_names"])
    return _assemble(files, clips, gender_of, names, len(names), len(performers), str(directory))


def _missing_samples(directory: Path, config: DataConfig) -> set[str]:
    candidates = [Path(config.missing)] if config.missing is not None else [
        directory / NTU_MISSING_LIST, directory.parent / NTU_MISSING_LIST,
    ]  # fmt: skip
    for c in candidates:
        if c.is_file():
            stems = set(re.findall(r"S\d{3}C\d{3}P\d{3}R\d{3}A\d{3}", c.read_text()))
            log.info("skipping %d samples listed in %s", len(stems), c)
            return stems
    if config.missing is not None:
        raise FileNotFoundError(f"missing-skeletons list {config.missing} not found")
    return set()


def _load_ntu60_dir(directory: Path, config: DataConfig) -> ClipSet:
    if config.genders is not None:
        gender_of: dict[int, int] | None = load_genders_csv(config.genders)
    elif config.allow_unknown_gender:
        gender_of = None
    else:
        raise ValueError(
            "NTU-60 needs the performers' genders: pass genders=<CSV> (see load_genders_csv; the table "
            "is not public in our sources) or allow_unknown_gender=True to label gender -1"
        )
    missing = _missing_samples(directory, config)
    files = [
        (p, n) for p, n in _skeleton_files(directory, config)
        if n.action < NTU60_FIRST_TWO_PERSON_ACTION and n.stem not in missing
    ][: config.max_files]  # fmt: skip
    clips = _read_all([p for p, _ in files], config.workers)
    names = NTU60_ACTION_NAMES[: NTU60_FIRST_TWO_PERSON_ACTION - 1]
    return _assemble(files, clips, gender_of, names, len(names), NTU60_NUM_PERFORMERS, str(directory))


__all__: Sequence[str] = [
    "DataConfig", "ClipSet", "DenoiseConfig", "select_main_body", "load_genders_csv", "load_clips",
    "NTU60_ACTION_NAMES", "NTU60_FIRST_TWO_PERSON_ACTION", "NTU_MISSING_LIST", "Crop",
]  # fmt: skip
