"""Training: right paired targets, the optimisers' scopes, a short real run, resume after Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from pmr_stream.config import Config, LossWeights
from pmr_stream.model.checkpoint import load_checkpoint
from pmr_stream.synth import StandinSpec, generate_standin
from pmr_training import losses as L
from pmr_training.data import DataConfig, load_clips
from pmr_training.train import Trainer


class OracleModel:
    """A stand-in for the network that retargets perfectly: x = MOTION[A] + BODY[P], and
    the label of each part is written into the clip (x[:, 0, 0, 0] = A, x[:, 0, 0, 1] = P)."""

    def __init__(self, n_actions: int, n_performers: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.motion = torch.randn(n_actions, 75, 25, 3, generator=g)
        self.body = torch.randn(n_performers, 75, 25, 3, generator=g)
        self.motion[:, 0, 0] = 0
        self.body[:, 0, 0] = 0
        self.motion[:, 0, 0, 0] = torch.arange(n_actions, dtype=torch.float32)
        self.body[:, 0, 0, 1] = torch.arange(n_performers, dtype=torch.float32)
        self.na, self.np = n_actions, n_performers

    def clip(self, a: int, p: int) -> torch.Tensor:
        return self.motion[a] + self.body[p]

    def get_embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = x[:, 0, 0, 0].round().long()
        p = x[:, 0, 0, 1].round().long()
        return torch.eye(self.na)[a][:, :, None], torch.eye(self.np)[p][:, :, None]  # (B, K, 1) one-hot codes

    def decode(self, motion: torch.Tensor, privacy: torch.Tensor) -> torch.Tensor:
        a, p = motion[:, :, 0].argmax(1), privacy[:, :, 0].argmax(1)
        return self.motion[a] + self.body[p]


def test_cross_reconstruction_targets_match_content() -> None:
    """With a perfect retargeter every reconstruction term is zero only if each output is
    compared with the clip whose content it has: D(E_M(x1), E_P(x2)) = (P2, A1) = y2."""
    oracle = OracleModel(n_actions=3, n_performers=4)
    p1, p2, a1, a2 = [0, 1], [2, 3], [0, 1], [2, 0]
    batch = {
        "x1": torch.stack([oracle.clip(a, p) for a, p in zip(a1, p1, strict=True)]),
        "x2": torch.stack([oracle.clip(a, p) for a, p in zip(a2, p2, strict=True)]),
        "y1": torch.stack([oracle.clip(a, p) for a, p in zip(a2, p1, strict=True)]),
        "y2": torch.stack([oracle.clip(a, p) for a, p in zip(a1, p2, strict=True)]),
        "performer1": torch.tensor(p1), "performer2": torch.tensor(p2),
        "action1": torch.tensor(a1), "action2": torch.tensor(a2),
    }  # fmt: skip
    out = L.paired_ae_loss(oracle, batch, LossWeights())  # type: ignore[arg-type]
    assert out.parts["rec"] == pytest.approx(0.0, abs=1e-9)
    assert out.parts["cross"] == pytest.approx(0.0, abs=1e-9)
    assert out.parts["latent"] == pytest.approx(0.0, abs=1e-9)
    # the paper's pairing (x1's motion with x2's body compared against y1) is not zero
    wrong = L.reconstruction(
        oracle.decode(oracle.get_embeddings(batch["x1"])[0], oracle.get_embeddings(batch["x2"])[1]),
        batch["y1"],
    )
    assert wrong.item() > 1.0
    perf, act = L.quadruplet_labels(batch)
    assert perf.tolist() == p1 + p2 + p1 + p2 and act.tolist() == a1 + a2 + a2 + a1


def test_loss_terms_on_known_cases() -> None:
    x = torch.zeros(2, 75, 25, 3)
    y = x.clone()
    y[:, :, 3, 0] = 0.1  # the head moved 10 cm in every frame: constant offset, no velocity
    assert L.reconstruction(y, x).item() == pytest.approx(
        75 * 0.01 / 75, rel=1e-5
    )  # sum over frames, mean over 75 coords
    assert L.end_effector_velocity(y, x).item() == pytest.approx(0.0, abs=1e-9)
    z = x.clone()
    z[:, 1::2, 3, 0] = 0.05  # a head that jitters
    assert L.end_effector_velocity(z, x).item() > 0
    assert L.smoothness(z, x).item() > L.smoothness(y, x).item() == pytest.approx(0.0, abs=1e-5)


@pytest.fixture(scope="module")
def tiny_standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = StandinSpec(
        performers=4, actions=("wave", "jump", "squat"), cameras=(1, 2), replications=1, seed=0
    )
    path = tmp_path_factory.mktemp("standin") / "tiny.npz"
    generate_standin(spec).save_npz(path)
    return path


def tiny_config(epochs: list[int]) -> Config:
    cfg = Config()
    cfg.training.batch_size = 4
    cfg.training.lr = 1e-3
    cfg.training.adv_lr = 1e-3
    cfg.data.paired_samples_per_epoch = 8
    for st, e in zip(cfg.training.stages, epochs, strict=True):
        st.epochs = e
    return cfg


def sets(path: Path) -> tuple[Any, Any]:
    return load_clips(DataConfig(path=path, split="train")), load_clips(DataConfig(path=path, split="test"))


@pytest.mark.slow
def test_short_training_run_lowers_reconstruction(tiny_standin: Path, tmp_path: Path) -> None:
    train_set, val_set = sets(tiny_standin)
    trainer = Trainer(tiny_config([1, 8, 1, 1, 1, 1]), train_set, val_set, tmp_path / "run", progress=False)
    # the autoencoder's optimiser holds exactly the encoders and the decoder
    ae_params = {id(p) for g in trainer.ae_opt.param_groups for p in g["params"]}
    assert ae_params == {id(p) for p in trainer.model.parameters()}
    assert trainer.adv is not None and trainer.adv_opt is not None
    assert not ae_params & {id(p) for p in trainer.adv.parameters()}
    result = trainer.run()
    hist = result.history
    assert [r["stage"] for r in hist][:3] == ["1-paired-ae", "2-unpaired-ae", "2-unpaired-ae"]
    assert len(hist) == 13
    first_rec = hist[0]["train_rec"]
    last_ae = [r for r in hist if r["stage"] == "2-unpaired-ae"][-1]
    assert last_ae["train_rec"] < 0.7 * first_rec, (first_rec, last_ae["train_rec"])
    assert last_ae["val_rec"] < hist[0]["val_rec"]
    # classifier stages log accuracies, joint stages log the adversarial terms
    assert "train_acc_priv_adv" in hist[9] and "train_emb" in hist[-1]
    # logs, curves and checkpoints
    run = tmp_path / "run"
    rows = json.loads((run / "log.json").read_text())
    assert len(rows) == 13 and "val_cross" in rows[-1]
    assert (run / "log.csv").read_text().count("\n") == 14
    assert result.plots and result.plots[0].stat().st_size > 10_000
    best = load_checkpoint(run / "best.pt")
    assert best.training_state is None and best.provenance["metrics"]
    assert best.config.training.batch_size == 4


@pytest.mark.slow
def test_ctrl_c_keeps_finished_epochs_and_resume_finishes(
    tiny_standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_set, val_set = sets(tiny_standin)
    epochs = [1, 2, 0, 0, 0, 1]
    trainer = Trainer(tiny_config(epochs), train_set, val_set, tmp_path / "run", progress=False)
    original = Trainer._run_epoch
    calls = {"n": 0}

    def interrupt_third(self: Trainer, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original(self, *args)

    monkeypatch.setattr(Trainer, "_run_epoch", interrupt_third)
    result = trainer.run()
    assert result.interrupted and len(result.history) == 2
    monkeypatch.setattr(Trainer, "_run_epoch", original)
    saved = load_checkpoint(tmp_path / "run" / "last.pt")
    assert saved.training_state is not None and list(saved.training_state["position"]) == [1, 1]
    again = Trainer(tiny_config(epochs), train_set, val_set, tmp_path / "run", progress=False)
    again.resume()
    torch.testing.assert_close(
        again.model.state_dict()["decoder.deconvs.0.weight"], saved.model_state["decoder.deconvs.0.weight"]
    )
    done = again.run()
    assert not done.interrupted
    assert [(r["stage"], r["epoch"]) for r in done.history] == [
        ("1-paired-ae", 1), ("2-unpaired-ae", 1), ("2-unpaired-ae", 2), ("6-paired-both", 1),
    ]  # fmt: skip


def test_resume_refuses_inference_checkpoints(tiny_standin: Path, tmp_path: Path) -> None:
    from pmr_stream.model.checkpoint import Checkpoint, save_checkpoint
    from pmr_stream.model.pmr import PMRModel

    train_set, val_set = sets(tiny_standin)
    save_checkpoint(tmp_path / "inf.pt", Checkpoint(Config(), PMRModel().state_dict()))
    trainer = Trainer(tiny_config([1] * 6), train_set, val_set, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="no training state"):
        trainer.resume(tmp_path / "inf.pt")
