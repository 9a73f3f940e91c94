"""The dataset loader: stand-in npz and .skeleton folders, real NTU-60 files, crops and pairs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pmr_stream import synth as S
from pmr_stream.formats.ntu_dataset import parse_ntu_name
from pmr_training.data import (
    NTU_MISSING_LIST,
    ClipSet,
    DataConfig,
    load_clips,
    load_genders_csv,
    select_main_body,
)
from pmr_training.datasets import PairedDataset, SkeletonDataset, make_dataset

SPEC = S.StandinSpec(
    performers=4, actions=("drink", "wave", "clap", "squat"), cameras=(1, 2, 3), replications=1, seed=3
)


@pytest.fixture(scope="module")
def standin_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return S.generate_dataset(SPEC, tmp_path_factory.mktemp("standin") / "s.npz", fmt="npz", progress=False)


def test_split_labels_and_normalisation(standin_npz: Path) -> None:
    train = load_clips(DataConfig(path=standin_npz, split="train"))
    test = load_clips(DataConfig(path=standin_npz, split="test"))
    every = load_clips(DataConfig(path=standin_npz, split="all"))
    assert set(train.camera) == {2, 3} and set(test.camera) == {1}
    assert len(train) + len(test) == len(every) == SPEC.num_clips
    assert every.num_actions == len(S.ACTION_NAMES) and every.num_performers == 4
    assert every.action_names == S.ACTION_NAMES
    cast = S.make_performers(4, seed=3)
    for i, stem in enumerate(every.names):
        name = parse_ntu_name(stem)
        assert every.action[i] == name.action - 1 and every.performer[i] == name.performer - 1
        assert every.camera[i] == name.camera and every.replication[i] == name.replication
        assert every.gender[i] == cast[name.performer - 1].gender_label
    for clip in every.clips:
        assert clip.dtype == np.float32 and clip.shape[1:] == (25, 3)
        np.testing.assert_array_equal(
            clip[0, 1], np.zeros(3, np.float32)
        )  # SpineMid of frame 0 at the origin
    # only translated: same bone lengths as the raw clip
    raw = S.generate_standin(SPEC)
    j = raw.names.tolist().index(every.names[5])
    np.testing.assert_allclose(every.clips[5], raw.clip(j) - raw.clip(j)[0, 1], atol=1e-5)


def test_dataset_items_and_crops(standin_npz: Path) -> None:
    clips = load_clips(DataConfig(path=standin_npz, split="test"))
    ds = SkeletonDataset(clips, "random", seed=1)
    item = ds[2]
    assert item["x"].shape == (75, 25, 3) and item["x"].dtype == torch.float32
    for key in ("action", "performer", "gender", "camera"):
        assert item[key].dtype == torch.int64 and item[key].ndim == 0
    assert int(item["camera"]) == 1 and int(item["action"]) == clips.action[2]
    assert torch.equal(ds[2]["x"], SkeletonDataset(clips, "random", seed=1)[2]["x"])  # deterministic
    long = int(np.argmax(clips.lengths()))
    assert clips.lengths()[long] > 80
    starts = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        x = ds[long]["x"].numpy()
        starts.add(
            int(np.flatnonzero(np.all(np.isclose(clips.clips[long][:, None], x[0][None]), axis=(2, 3)))[0])
        )
    assert len(starts) > 1  # a new random window each epoch
    centre = SkeletonDataset(clips, "centre")[long]["x"].numpy()
    t = clips.lengths()[long]
    np.testing.assert_array_equal(centre, clips.clips[long][(t - 75) // 2 : (t - 75) // 2 + 75])
    every = SkeletonDataset(clips, "all", stride=25)
    expected = sum(
        len(range(0, max(n, 75) - 75 + 1, 25)) + ((max(n, 75) - 75) % 25 != 0) for n in clips.lengths()
    )
    assert len(every) == expected
    # a short clip is padded with its last frame
    short = ClipSet([clips.clips[0][:40]], [0], [0], [1], [1], [1], ["S001C001P001R001A001"], ("a",), 1, 1)
    x = SkeletonDataset(short, "centre")[0]["x"].numpy()
    np.testing.assert_array_equal(x[40:], np.repeat(clips.clips[0][39:40], 35, axis=0))
    assert len(make_dataset(DataConfig(path=standin_npz, split="train", crop="centre"))) == 2 * len(clips)


def test_skeleton_folder_loads_like_the_npz(tmp_path: Path, standin_npz: Path) -> None:
    folder = S.generate_dataset(SPEC, tmp_path / "sk", fmt="skeleton", progress=False)
    from_files = load_clips(DataConfig(path=folder, split="test"))
    from_npz = load_clips(DataConfig(path=standin_npz, split="test"))
    assert from_files.names == from_npz.names
    for a, b in zip(from_files.clips, from_npz.clips, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for key in ("action", "performer", "gender", "camera"):
        np.testing.assert_array_equal(getattr(from_files, key), getattr(from_npz, key))
    (folder / "labels.json").unlink()
    with pytest.raises(FileNotFoundError, match="labels.json"):
        load_clips(DataConfig(path=folder))


def test_paired_quadruplets(standin_npz: Path) -> None:
    clips = load_clips(DataConfig(path=standin_npz, split="train"))
    pairs = PairedDataset(clips, "random", seed=4, length=200)
    assert len(pairs) == 200
    p, a, c = clips.performer, clips.action, clips.camera
    for k in range(200):
        q = pairs.quadruplet(k)
        assert p[q.x1] != p[q.x2] and a[q.x1] != a[q.x2]
        assert c[q.x1] == c[q.x2] == c[q.y1] == c[q.y2]
        assert (p[q.y1], a[q.y1]) == (p[q.x1], a[q.x2])  # y1 = (P1, A2)
        assert (p[q.y2], a[q.y2]) == (p[q.x2], a[q.x1])  # y2 = (P2, A1): target of D(E_M(x1), E_P(x2))
    item = pairs[7]
    q = pairs.quadruplet(7)
    assert all(item[k].shape == (75, 25, 3) for k in ("x1", "x2", "y1", "y2"))
    assert (
        int(item["performer1"]) == p[q.x1]
        and int(item["action2"]) == a[q.x2]
        and int(item["camera"]) == c[q.x1]
    )
    one = clips.subset(clips.performer == 0)
    with pytest.raises(ValueError, match="quadruplet"):
        PairedDataset(one)


def test_main_body_selection_drops_noise_and_merges_id_switches() -> None:
    rng = np.random.default_rng(0)
    person = S.generate_clip(S.make_performers(1)[0], "wave", 1, 1, seed=0)[:60]  # (60, 25, 3)
    n = len(person)
    joints = np.zeros((n, 4, 25, 3), np.float32)
    present = np.zeros((n, 4), bool)
    joints[:35, 0], present[:35, 0] = person[:35], True  # the performer, first ID
    joints[35:, 1], present[35:, 1] = person[35:], True  # the same performer, new ID
    flat = person.copy()
    flat[..., 0] *= 6.0  # wide and flat: a ghost on the furniture
    flat[..., 1] *= 0.2
    joints[:, 2], present[:, 2] = flat + rng.normal(0, 0.1, flat.shape), True
    joints[10:15, 3], present[10:15, 3] = person[10:15] + 1.0, True  # a 5-frame flicker
    clip, frames = select_main_body(joints, present)
    np.testing.assert_array_equal(frames, np.arange(n))
    np.testing.assert_array_equal(clip, person)
    gap = present.copy()
    gap[20:25] = False  # frames nobody was tracked in are dropped
    clip, frames = select_main_body(joints, gap)
    assert len(clip) == n - 5 and 22 not in frames
    empty, none = select_main_body(np.zeros((5, 0, 25, 3)), np.zeros((5, 0), bool))
    assert empty.shape == (0, 25, 3) and none.size == 0


def test_genders_csv_layouts(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text("performer,gender\nP001,M\nP002,F\n3,male\n")
    assert load_genders_csv(a) == {1: 1, 2: 0, 3: 1}
    b = tmp_path / "b.csv"
    b.write_text("Gender\nM\nF\nF\n")  # row i = performer i + 1
    assert load_genders_csv(b) == {1: 1, 2: 0, 3: 0}
    c = tmp_path / "c.csv"
    c.write_text("performer,gender\n1,X\n")
    with pytest.raises(ValueError, match="M/F"):
        load_genders_csv(c)


def test_ntu60_loader_on_real_samples(ntu_dir: Path, tmp_path: Path) -> None:
    real = sorted(ntu_dir.glob("*.skeleton"))
    if not real:
        pytest.skip(f"no .skeleton files in {ntu_dir}")
    folder = tmp_path / "nturgb+d_skeletons"
    folder.mkdir()
    for f in real:  # links, never copies, of the licensed samples
        os.symlink(f, folder / f.name)
    genders = tmp_path / "genders.csv"
    genders.write_text(
        "performer,gender\n" + "\n".join(f"{i},{'F' if i in (3, 15) else 'M'}" for i in range(1, 41))
    )
    with pytest.raises(ValueError, match="genders"):
        load_clips(DataConfig(dataset="ntu60", path=folder, split="all"))
    clips = load_clips(DataConfig(dataset="ntu60", path=folder, split="all", genders=genders))
    stems = {f.name[:20] for f in real}
    expected = sorted(s for s in stems if parse_ntu_name(s).action < 50)
    assert clips.names == expected and "S001C003P008R002A058" not in clips.names  # two-person action dropped
    assert clips.num_actions == 49 and clips.num_performers == 40
    assert clips.action_names[0] == "drink water"
    for i, stem in enumerate(clips.names):
        name = parse_ntu_name(stem)
        assert clips.action[i] == name.action - 1 and clips.performer[i] == name.performer - 1
        assert clips.camera[i] == name.camera
        assert clips.gender[i] == (0 if name.performer in (3, 15) else 1)
        assert clips.clips[i].shape[1:] == (25, 3) and len(clips.clips[i]) >= 60
        np.testing.assert_array_equal(clips.clips[i][0, 1], np.zeros(3, np.float32))
    test = load_clips(DataConfig(dataset="ntu60", path=folder, split="test", genders=genders))
    assert set(test.camera) == {1} and "S004C002P003R001A017" not in test.names
    # the official missing-skeletons list is honoured
    (tmp_path / NTU_MISSING_LIST).write_text("S001C001P001R001A011\n")
    skipped = load_clips(DataConfig(dataset="ntu60", path=folder, split="all", allow_unknown_gender=True))
    assert "S001C001P001R001A011" not in skipped.names and set(skipped.gender) == {-1}
    item = SkeletonDataset(skipped, "centre")[0]
    assert item["x"].shape == (75, 25, 3)


def test_cache_holds_every_camera(tmp_path: Path) -> None:
    folder = S.generate_dataset(SPEC, tmp_path / "sk", fmt="skeleton", progress=False)
    cache = tmp_path / "cache.npz"
    test = load_clips(DataConfig(path=folder, split="test", cache=cache))
    assert cache.is_file() and set(test.camera) == {1}
    train = load_clips(DataConfig(path=folder, split="train", cache=cache))  # served from the cache
    assert set(train.camera) == {2, 3} and len(train) == 2 * len(test)
