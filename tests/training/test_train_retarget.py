"""The default anonymizer's recipe: the retarget head, its dial, resumable training, and the
direction its adversarial terms move a retrained attacker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from pmr_stream.assets import DEFAULT_DUMMY
from pmr_stream.backends.base import load_dummy
from pmr_stream.model.checkpoint import load_model
from pmr_stream.model.pmr import PMRModel
from pmr_stream.model.privacy_dial import DIAL, PRIVACY_LEVELS
from pmr_stream.skeleton import crop_clip, median_bone_lengths, retarget_bones
from pmr_stream.synth import StandinSpec, generate_standin
from pmr_training.data import DataConfig, load_clips
from pmr_training.recipe import RetargetRecipe
from pmr_training.sgn import SGNClassifier, SGNConfig
from pmr_training.train_retarget import RetargetTrainer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    spec = StandinSpec(
        performers=4, actions=("wave", "squat", "walk_in_place"), cameras=(1,), replications=2, seed=3
    )
    path = tmp_path_factory.mktemp("standin") / "tiny.npz"
    generate_standin(spec).save_npz(path)
    return load_clips(DataConfig(dataset="standin", path=path, split="all"))


def _windows(clips):  # type: ignore[no-untyped-def]
    return torch.from_numpy(np.stack([crop_clip(c, "centre") for c in clips.clips]))


def test_fidelity_level_is_the_fk_retarget_up_to_one_offset(tiny) -> None:  # type: ignore[no-untyped-def]
    dummy = load_dummy(DEFAULT_DUMMY)
    model = PMRModel(head="retarget")
    model.set_dummy(dummy)
    x = _windows(tiny)
    y = model.retarget(x, None, DIAL["fidelity"]).numpy()  # type: ignore[misc]
    fk = retarget_bones(x.numpy(), median_bone_lengths(dummy))
    shift = (y - fk)[:, :1]  # one constant offset per window
    assert np.abs(y - fk - shift).max() < 1e-4
    # the window convention: SpineMid of the first frame at the origin
    assert np.abs(y[:, 0, 1]).max() < 1e-5
    # every bone has the dummy's length at every level
    for level in PRIVACY_LEVELS:
        out = (
            model.anonymize_with_code(x, model.privacy_code(torch.from_numpy(dummy)[None]), level)
            .detach()
            .numpy()
        )
        lengths = np.linalg.norm(
            out[..., [c for c, _ in _bones()], :] - out[..., [p for _, p in _bones()], :], axis=-1
        )
        assert np.allclose(lengths, median_bone_lengths(dummy), atol=1e-4), level


def _bones():  # type: ignore[no-untyped-def]
    from pmr_stream.skeleton import NTU25

    return NTU25.bones


def test_levels_differ_and_a_model_without_dial_refuses_one(tiny) -> None:  # type: ignore[no-untyped-def]
    model = PMRModel(head="retarget")
    model.set_dummy(load_dummy(DEFAULT_DUMMY))
    x = _windows(tiny)[:4]
    code = model.privacy_code(torch.from_numpy(load_dummy(DEFAULT_DUMMY))[None])
    outs = [model.anonymize_with_code(x, code, lv) for lv in PRIVACY_LEVELS]
    assert (outs[0] - outs[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="no privacy dial"):
        PMRModel().anonymize_with_code(x, code[:, :, :16], "strong")


def _attacker_accuracy(outputs: torch.Tensor, labels: torch.Tensor, train: torch.Tensor, seed: int) -> float:
    """A fresh SGN re-ID attacker trained on the anonymized windows of one take (a fixed budget),
    measured on the other take's."""
    torch.manual_seed(seed)
    net = SGNClassifier(int(labels.max()) + 1, SGNConfig(embed=16, feature=64, segments=8, dropout=0.0))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    net.train()
    for _ in range(60):
        loss = F.cross_entropy(net(outputs[train]), labels[train])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return float((net(outputs[~train]).argmax(1) == labels[~train]).float().mean())


def test_adversarial_terms_lower_the_retrained_attackers_accuracy(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Same recipe with and without the identity adversaries (output re-ID and gender, embedding
    classifier): an attacker retrained on each model's output re-identifies less after the one
    trained against it. Fidelity is weighted low so that the residual is free to move. One torch
    thread: the tiny run is then the same on every host (the result may not hang on the
    summation order of a 2-thread reduction)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _adversarial_run(tiny, tmp_path)
    finally:
        torch.set_num_threads(threads)


def _adversarial_run(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dummy = load_dummy(DEFAULT_DUMMY)
    base = RetargetRecipe(epochs=8, batch_size=12, lr=3e-3, adv_lr=5e-3, fidelity=0.02, smooth=0.0, utility=0.0,
                          recogniser_epochs=0, adv_reset=0, adversary_sgn=(16, 64, 8), adv_updates=2)  # fmt: skip
    x = _windows(tiny)
    labels = torch.from_numpy(tiny.performer)
    train = torch.from_numpy(tiny.replication == 1)
    acc = {}
    for name, recipe in (("plain", replace(base, identity=0.0, gender=0.0, embedding=0.0)),
                         ("adversarial", replace(base, identity=3.0, gender=1.0, embedding=0.1))):  # fmt: skip
        trainer = RetargetTrainer(recipe, tiny, dummy, tmp_path / name, progress=False)
        trainer.run()
        model, _ = load_model(tmp_path / name / "final.pt")
        code = model.privacy_code(torch.from_numpy(dummy)[None])
        with torch.no_grad():
            y = model.anonymize_with_code(x, code, "balanced")
        acc[name] = np.mean([_attacker_accuracy(y, labels, train, s) for s in range(3)])
    assert acc["adversarial"] < acc["plain"] - 0.1, acc


def test_training_resumes_where_it_stopped(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dummy = load_dummy(DEFAULT_DUMMY)
    recipe = RetargetRecipe(epochs=2, batch_size=12, recogniser_epochs=1, adversary_sgn=(8, 32, 6))
    first = RetargetTrainer(replace(recipe, epochs=1), tiny, dummy, tmp_path, progress=False)
    first.run()
    second = RetargetTrainer(recipe, tiny, dummy, tmp_path, progress=False)
    assert second.resume()
    assert second.epoch == 1 and second.recogniser is not None
    second.run()
    assert [h["epoch"] for h in second.history] == [1, 2]
    model, ckpt = load_model(tmp_path / "final.pt")
    assert model.has_dial and ckpt.config.model.head == "retarget"
    assert ckpt.provenance["epochs_done"] == 2
