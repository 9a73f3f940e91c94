"""The evaluation's splits and adaptive attackers (issue 13): cross-take shares no take with its
training side, adaptive attackers are retrained on the method's own output, and ``pmr evaluate
--quick`` runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pmr_training.adaptive import AdaptiveSpec, attacker_clips
from pmr_training.data import DataConfig, load_clips
from pmr_training.evaluators import EvaluatorSpec, centre_windows, load_or_train
from pmr_training.protocol_eval import Anonymizer, evaluate_protocol
from pmr_training.protocols import get_protocol, parse_protocols, takes
from pmr_training.report import protocol_table, write_outputs
from pmr_training.sgn import SGNConfig

# 36 training clips, 3 steps an epoch: 60 epochs make fixed evaluators far above chance (about 10 s)
TINY = EvaluatorSpec(
    sgn=SGNConfig(embed=16, feature=64, segments=8), epochs=60, batch_size=16, pairs_per_epoch=64
)


@pytest.fixture(scope="module")
def clips(tiny_npz: Path):  # noqa: ANN201
    return load_clips(DataConfig(path=tiny_npz, split="all"))


def test_cross_take_shares_no_take_and_cross_view_does(clips) -> None:  # noqa: ANN001
    train, test = get_protocol("cross-take").split(clips)
    assert set(test.camera.tolist()) == {1} and set(test.replication.tolist()) == {2}
    assert set(train.replication.tolist()) == {1} and set(train.camera.tolist()) == {1, 2, 3}
    assert not takes(train) & takes(test)
    vtrain, vtest = get_protocol("cross-view").split(clips)
    assert set(vtest.camera.tolist()) == {1} and set(vtrain.camera.tolist()) == {2, 3}
    assert takes(vtest) <= takes(vtrain)  # the paper's split: every test take is also filmed for training
    assert parse_protocols("both") == ("cross-take", "cross-view")
    with pytest.raises(ValueError, match="protocol must be one of"):
        get_protocol("cross-subject")
    one_rep = clips.subset(np.flatnonzero(clips.replication == 1))
    with pytest.raises(ValueError, match="cross-take: no test clips"):
        get_protocol("cross-take").split(one_rep)


def test_attacker_subset_is_seeded_and_bounded(clips) -> None:  # noqa: ANN001
    sub = attacker_clips(clips, AdaptiveSpec(max_clips=10))
    again = attacker_clips(clips, AdaptiveSpec(max_clips=10))
    assert len(sub) == 10 and sub.performer.tolist() == again.performer.tolist()
    assert attacker_clips(clips, AdaptiveSpec()) is clips
    with pytest.raises(ValueError, match="epochs"):
        AdaptiveSpec(epochs=0)


def _axes_swapped(windows: np.ndarray) -> np.ndarray:
    """Every skeleton lying on its side (x and y swapped), halved in size: the fixed recogniser
    (trained upright, rotated about y only) is lost, nothing that identifies the person is removed."""
    return np.ascontiguousarray(windows[..., [1, 0, 2]] * 0.5)


def test_adaptive_attackers_see_through_a_distortion_the_fixed_ones_miss(clips, tmp_path: Path) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    torch.set_num_threads(1)
    train, test = get_protocol("cross-take").split(clips)
    ev = load_or_train(
        train, tmp_path / "ev", TINY, tasks=("action", "reid"), progress=False, announce=lambda m: None
    )
    frozen = centre_windows(test)[0]
    anonymizers = [
        Anonymizer("swapped", "test", _axes_swapped),
        Anonymizer("frozen", "test", lambda w: np.broadcast_to(frozen - frozen[0, 1], w.shape).copy()),
    ]
    res = evaluate_protocol("cross-take", ev, train, test, anonymizers, frozen, [0, 1], adaptive=AdaptiveSpec(epochs=40),
                            progress=False, announce=lambda m: None)  # fmt: skip
    rows = {r.method: r for r in res.rows}
    orig, swapped, const = rows["Original"], rows["swapped offline"], rows["frozen offline"]
    assert orig.adaptive == orig.fixed and orig.attacker_seconds is None
    assert orig.summary("fixed")["reid_top1"][0] >= 0.5  # the fixed attackers work on the originals
    fx, ad = swapped.summary("fixed"), swapped.summary("adaptive")
    # the distortion fools the fixed attackers; retrained on the distorted training clips they recover
    assert ad["reid_top1"][0] > fx["reid_top1"][0] + 0.15, (fx, ad)
    assert ad["action_top1"][0] > fx["action_top1"][0] + 0.15, (fx, ad)
    assert swapped.attacker_seconds is not None and swapped.attacker_seconds > 0
    assert swapped.fidelity["mpjpe_mm"] > 50  # far from the FK retarget
    # a constant output stays at chance for any attacker: nothing to learn from
    assert const.summary("adaptive")["reid_top1"][0] == pytest.approx(1 / test.num_performers, abs=1e-6)
    md = protocol_table(res, "tiny")
    assert "| swapped offline |" in md and "Re-ID top-1 adaptive" in md and "| *chance / majority* |" in md
    paths = write_outputs(tmp_path / "out", "tiny", [res])
    doc = json.loads(paths["json"].read_text())
    assert [r["method"] for r in doc["protocols"]["cross-take"]["rows"]] == [
        "Original",
        "swapped offline",
        "frozen offline",
    ]
    assert paths["chart"].stat().st_size > 10_000


def test_pmr_evaluate_quick_end_to_end(
    tiny_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pmr_stream.cli import main

    out = tmp_path / "eval"
    rc = main(["evaluate", "--quick", "--data", str(tiny_npz), "--evaluators", str(tmp_path / "ev"),
               "--evaluator-epochs", "1", "--adaptive-epochs", "1", "--adaptive-clips", "12", "--max-test", "6",
               "--output", str(out), "--quiet", "--stream-backend", "torch", "--threads", "1"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "cross-take, fixed and adaptive attackers" in text and "quick mode" in text
    doc = json.loads((out / "eval.json").read_text())
    assert list(doc["protocols"]) == ["cross-take"] and doc["info"]["quick"] is True
    rows = doc["protocols"]["cross-take"]["rows"]
    names = [r["method"] for r in rows]
    from pmr_stream.model.privacy_dial import DEFAULT_PRIVACY, PRIVACY_LEVELS

    assert names[0] == "Original" and "FK baseline offline" in names
    for level in PRIVACY_LEVELS:
        assert f"Default [{level}] offline" in names
    assert any(n.startswith(f"Default [{DEFAULT_PRIVACY}] streaming") for n in names)
    for r in rows[1:]:
        assert r["adaptive"]["per_seed"], r["method"]  # every method measured by retrained attackers
        assert {"mpjpe_mm", "bone_error_mm", "jitter_mm"} <= set(r["fidelity"])
    assert (out / "privacy_utility.png").is_file()
