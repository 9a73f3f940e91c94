"""Each metric and the FK baseline on small cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pmr_stream.skeleton import NTU25, bone_directions, bone_lengths, median_bone_lengths, retarget_bones
from pmr_stream.synth import StandinSpec, generate_standin
from pmr_training.evaluators import linkage_pairs
from pmr_training.fk_baseline import fk_anonymize
from pmr_training.metrics import binary_accuracy, majority_rate, mean_std, mse, topk_accuracy


def test_mse_is_over_every_frame_not_frame_zero() -> None:
    a = np.zeros((2, 75, 25, 3), np.float32)
    b = a.copy()
    b[:, 10:] = 1.0  # frame 0 equal, later frames differ: the paper's frame-0 MSE would say 0
    assert mse(a, b) == pytest.approx(65 / 75)
    assert mse(a, a) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        mse(a, b[:, :70])


def test_topk_accuracy_known_answers() -> None:
    logits = np.array([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4], [0.2, 0.3, 0.5], [0.9, 0.05, 0.05]])
    labels = np.array([1, 2, 2, 2])
    assert topk_accuracy(logits, labels, 1) == 0.5  # rows 0 and 2
    assert topk_accuracy(logits, labels, 2) == 0.75  # row 1 has 2 second; row 3 ties 1 and 2, 1 wins
    assert topk_accuracy(logits, labels, 3) == 1.0
    # a constant score row predicts class 0 first: accuracy = share of label 0
    assert topk_accuracy(np.zeros((4, 3)), np.array([0, 1, 0, 2]), 1) == 0.5
    with pytest.raises(ValueError, match="k must be"):
        topk_accuracy(logits, labels, 4)


def test_binary_majority_and_mean_std() -> None:
    assert binary_accuracy([2.0, -1.0, 0.5, -0.2], [1, 0, 0, 0]) == 0.75
    assert majority_rate([1, 1, 0, 1]) == 0.75
    m, s = mean_std([0.5, 0.7])
    assert m == pytest.approx(0.6) and s == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert mean_std([0.3]) == (0.3, 0.0)


def test_linkage_pairs_balanced_and_each_anchor_once_each_way() -> None:
    perf = np.array([0, 0, 1, 1, 1, 2, 2])
    pairs = linkage_pairs(perf, np.random.default_rng(0))
    assert len(pairs) == 2 * len(perf)
    for a in range(len(perf)):
        mine = pairs[pairs[:, 0] == a]
        assert sorted(mine[:, 2].tolist()) == [0, 1]
        pos, neg = mine[mine[:, 2] == 1][0], mine[mine[:, 2] == 0][0]
        assert perf[pos[1]] == perf[a] and pos[1] != a
        assert perf[neg[1]] != perf[a]
    # an attacker whose score ignores the second clip is at chance exactly
    scores = np.where(pairs[:, 0] % 2 == 0, 1.0, -1.0)
    assert binary_accuracy(scores, pairs[:, 2]) == 0.5


def test_fk_baseline_sets_dummy_bones_and_keeps_directions_and_root() -> None:
    a = generate_standin(StandinSpec(performers=2, actions=("wave",), cameras=(1,), replications=1, seed=3))
    clip = a.joints[a.offsets[0] : a.offsets[1]][:75]
    dummy = a.joints[a.offsets[1] : a.offsets[2]][:75]
    assert (
        np.abs(bone_lengths(clip).mean(0) - bone_lengths(dummy).mean(0)).max() > 0.01
    )  # two different bodies
    want = median_bone_lengths(dummy)
    out = retarget_bones(clip, want)
    np.testing.assert_allclose(bone_lengths(out), np.broadcast_to(want, (75, 24)), atol=1e-5)
    np.testing.assert_allclose(bone_directions(out), bone_directions(clip), atol=1e-5)
    np.testing.assert_allclose(out[:, 0], clip[:, 0], atol=1e-6)  # root trajectory kept
    # applied to itself it is the identity (to float precision)
    np.testing.assert_allclose(retarget_bones(clip, bone_lengths(clip)), clip, atol=1e-5)
    batch = fk_anonymize(np.stack([clip, clip]), np.stack([dummy, dummy]))
    np.testing.assert_allclose(batch[0], out, atol=1e-6)
    assert len(NTU25.bones) == 24
