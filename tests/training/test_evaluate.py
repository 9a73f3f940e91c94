"""The evaluation protocol on a tiny stand-in: evaluators, caching, known-answer anonymizers,
the streaming path and ``pmr evaluate`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pmr_stream.skeleton import bone_lengths, pad_to_length
from pmr_training.data import DataConfig, load_clips
from pmr_training.evaluate import Method, choose_dummies, evaluate, stream_outputs
from pmr_training.evaluators import EvaluatorSpec, centre_windows, load_or_train
from pmr_training.report import markdown_table, write_outputs
from pmr_training.sgn import SGNClassifier, SGNConfig, SiameseSGN, sample_frames

TINY = EvaluatorSpec(
    sgn=SGNConfig(embed=8, feature=32, segments=6), epochs=2, batch_size=16, pairs_per_epoch=64
)


@pytest.fixture(scope="module")
def splits(tiny_npz: Path):  # noqa: ANN201
    return load_clips(DataConfig(path=tiny_npz, split="train")), load_clips(
        DataConfig(path=tiny_npz, split="test")
    )


@pytest.fixture(scope="module")
def evaluators(splits, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN001, ANN201
    torch.set_num_threads(1)
    return load_or_train(
        splits[0], tmp_path_factory.mktemp("ev"), TINY, progress=False, announce=lambda m: None
    )


def test_sgn_shapes_and_frame_sampling() -> None:
    idx = sample_frames(75, 20, train=False)
    assert idx.tolist() == sorted(set(idx.tolist())) and len(idx) == 20 and idx.max() < 75
    g = torch.Generator().manual_seed(1)
    r = sample_frames(75, 20, train=True, generator=g)
    edges = np.linspace(0, 75, 21)
    assert all(edges[i] <= r[i] < edges[i + 1] + 1 for i in range(20))  # one frame inside each segment
    m = SGNClassifier(7, SGNConfig(embed=8, feature=16, segments=5)).eval()
    x = torch.randn(3, 75, 25, 3)
    assert m(x).shape == (3, 7)
    s = SiameseSGN(SGNConfig(embed=8, feature=16, segments=5)).eval()
    torch.testing.assert_close(s(x, x.flip(0)), s(x.flip(0), x))  # order of the pair does not matter
    with pytest.raises(ValueError, match="SGN input"):
        m(torch.randn(3, 75, 24, 3))


def test_cache_is_reused_and_refreshed_when_stale(splits, tmp_path: Path) -> None:  # noqa: ANN001
    said: list[str] = []
    load_or_train(splits[0], tmp_path, TINY, tasks=("action",), progress=False, announce=said.append)
    assert any("no cached evaluator" in s for s in said) and (tmp_path / "action.pt").is_file()
    said.clear()
    ev = load_or_train(splits[0], tmp_path, TINY, tasks=("action",), progress=False, announce=said.append)
    assert said == [] and set(ev.models) == {"action"}
    from dataclasses import replace

    load_or_train(
        splits[0], tmp_path, replace(TINY, epochs=3), tasks=("action",), progress=False, announce=said.append
    )
    assert any("stale (spec changed)" in s for s in said)
    said.clear()
    other = splits[0].subset(np.arange(len(splits[0]) - 1))
    load_or_train(
        other, tmp_path, replace(TINY, epochs=3), tasks=("action",), progress=False, announce=said.append
    )
    assert any("fingerprint changed" in s for s in said)


def test_dummy_policies(splits) -> None:  # noqa: ANN001
    test = splits[1]
    assert choose_dummies(test, "constant", 0) == (None, 0)
    for pol in ("random", "same_action"):
        idx, fallback = choose_dummies(test, pol, 3)
        assert fallback == 0
        assert (test.performer[idx] != test.performer).all()
        if pol == "same_action":
            assert (test.action[idx] == test.action).all()
        assert (choose_dummies(test, pol, 3)[0] == idx).all()  # seeded
    assert not (choose_dummies(test, "random", 0)[0] == choose_dummies(test, "random", 1)[0]).all()
    with pytest.raises(ValueError, match="dummy policy"):
        choose_dummies(test, "mine", 0)


def test_identity_reproduces_original_and_constant_output_is_chance(
    evaluators, splits, tmp_path: Path
) -> None:  # noqa: ANN001
    test = splits[1]
    frozen = centre_windows(test)[0]
    methods = [
        Method("identity", "test", lambda w, d: w.copy()),
        Method("constant", "test", lambda w, d: np.broadcast_to(frozen, w.shape).copy(), ("constant",)),
    ]
    dummy = centre_windows(test)[1]
    res = evaluate(evaluators, test, methods, dummy, [0, 1], progress=False)
    rows = {(r.method, r.policy): r for r in res.rows}
    orig = rows[("Original", "-")]
    for pol in ("constant", "random", "same_action"):
        ident = rows[("identity", pol)]
        for a, b in zip(orig.per_seed, ident.per_seed, strict=True):
            assert b["mse"] == 0.0
            assert {k: v for k, v in a.items() if k != "mse"} == {k: v for k, v in b.items() if k != "mse"}
    const = rows[("constant", "constant")]
    # a constant input gets one answer, right exactly for the clips of that class; the test
    # split is balanced over its 4 performers, so re-ID is at chance, 1/4; linkage is 50% by construction
    assert len(const.per_seed) == 2
    for s in const.per_seed:
        for task, key, labels in (("reid", "reid_top1", test.performer), ("action", "action_top1", test.action),
                                  ("gender", "gender", test.gender)):  # fmt: skip
            answer = int(evaluators.logits(task, frozen[None])[0].argmax())
            assert s[key] == pytest.approx(np.mean(labels == answer))
        assert s["reid_top1"] == pytest.approx(1 / test.num_performers)
        assert s["linkage"] == 0.5
        assert s["mse"] > 0
    assert res.chance["reid_top1"] == pytest.approx(0.25) and res.chance["linkage"] == 0.5
    md = markdown_table(res, "tiny")
    assert "| identity | same action |" in md and "| *chance* |" in md
    paths = write_outputs(tmp_path, "tiny", [], res)
    data = json.loads(paths["json"].read_text())["paper_table"]
    assert len(data["rows"]) == 1 + 3 + 1 and data["seeds"] == [0, 1]
    assert "chart" not in paths  # the chart is of a protocol table (test_protocols.py)


class _Identity:
    """A backend that returns its windows: the streaming bookkeeping must then give back the input."""

    name = "identity"

    def anonymize(self, windows: np.ndarray) -> np.ndarray:
        return np.asarray(windows).copy()


@pytest.mark.parametrize("policy", ["last", "delay:4"])
def test_streaming_path_bookkeeping_returns_the_centre_window(splits, policy: str) -> None:  # noqa: ANN001
    test = splits[1].subset(np.arange(5))
    out = stream_outputs(test, _Identity(), policy, chunk=2)
    np.testing.assert_allclose(out, centre_windows(test), atol=1e-5)
    lengths = np.linspace(0.05, 0.3, 24).astype(np.float32)
    sized = stream_outputs(test, _Identity(), policy, chunk=2, bones=lengths)
    np.testing.assert_allclose(
        bone_lengths(sized), np.broadcast_to(lengths, sized.shape[:2] + (24,)), atol=1e-5
    )


def test_streaming_path_with_the_shipped_model(splits) -> None:  # noqa: ANN001
    from pmr_stream.assets import DEFAULT_DUMMY, DEFAULT_MODEL
    from pmr_stream.backends import get_backend

    test = splits[1].subset(np.arange(2))
    backend = get_backend("torch", model_path=str(DEFAULT_MODEL), dummy=str(DEFAULT_DUMMY))
    out = stream_outputs(test, backend, "last")
    # frame k of the output is the last frame of the window that ends there, SpineMid offset restored
    x = pad_to_length(test.clips[1])
    s = (len(x) - 75) // 2
    end = s + 40
    win = np.concatenate([np.repeat(x[:1], max(0, 74 - end), axis=0), x[max(0, end - 74) : end + 1]])
    off = win[0, 1].copy()
    want = backend.anonymize((win - off)[None])[0, -1] + off
    np.testing.assert_allclose(out[1, 40], want, atol=1e-4)
    assert np.abs(out - centre_windows(test)).mean() > 1e-3  # not the raw input


def test_pmr_evaluate_command_end_to_end(
    tiny_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The full command: both protocols, every method, the paper-layout table on cross-view."""
    from pmr_stream.cli import main

    out = tmp_path / "eval"
    rc = main(["evaluate", "--data", str(tiny_npz), "--evaluators", str(tmp_path / "ev"), "--evaluator-epochs", "1",
               "--seeds", "2", "--adaptive-epochs", "1", "--adaptive-clips", "8", "--output", str(out), "--quiet",
               "--stream-backend", "torch", "--threads", "1"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert (
        "evaluator reid: no cached evaluator" in text
        and "Stand-in dataset (synthetic, NOT NTU RGB+D)" in text
    )
    data = json.loads((out / "eval.json").read_text())
    assert set(data["protocols"]) == {"cross-take", "cross-view"}
    for proto in data["protocols"].values():
        names = [r["method"] for r in proto["rows"]]
        for method in ("PMR (paper) offline", "DMR offline", "FK baseline offline", "Default [balanced] offline",
                       "Default [strong] offline", "Default [fidelity] offline"):  # fmt: skip
            assert method in names
        assert any(n.startswith("Default [balanced] streaming") for n in names)
        assert all(len(r["fixed"]["per_seed"]) == 2 for r in proto["rows"])
    got = {(r["method"], r["policy"]) for r in data["paper_table"]["rows"]}
    for method in ("PMR (paper)", "PMR (paper) + dummy bones", "DMR", "FK baseline"):
        assert {(method, p) for p in ("constant", "random", "same_action")} <= got
    assert ("Original", "-") in got and ("Default [balanced] + dummy bones", "constant") in got
    assert (out / "privacy_utility.png").is_file() and (out / "eval.md").read_text().startswith("**Stand-in")
