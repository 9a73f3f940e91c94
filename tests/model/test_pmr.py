"""The PMR network: the paper's size, its Python API, the streaming graph, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pmr_stream.config import Config
from pmr_stream.model.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from pmr_stream.model.heads import Adversaries, EmbeddingClassifier, QualityController
from pmr_stream.model.pmr import DMR_CHANNELS, AnonymizerGraph, Decoder, Encoder, PMRModel, count_parameters


def test_parameter_count_is_the_papers_and_stays_put() -> None:
    model = PMRModel(T=75, encoded_channels=(128, 16))
    # E_M + E_P + D: the paper gives "about 0.99 M parameters"
    assert round(count_parameters(model) / 1e6, 2) == 0.99
    # this definition's exact counts, pinned so that any change to the layers shows here
    assert count_parameters(model) == 991_643
    assert count_parameters(model.motion_encoder) == count_parameters(model.privacy_encoder) == 318_856
    assert count_parameters(model.decoder) == 353_931
    # the DMR baseline is the same design with (256, 32) embeddings
    assert count_parameters(PMRModel(encoded_channels=DMR_CHANNELS)) == 4_944_539


def test_shapes_of_the_api() -> None:
    torch.manual_seed(0)
    model = PMRModel().eval()
    x = torch.randn(3, 75, 25, 3) * 0.3
    dummy = torch.randn(1, 75, 25, 3) * 0.3
    motion, privacy = model.get_embeddings(x)
    assert motion.shape == privacy.shape == (3, 128, 16)
    assert model(x).shape == (3, 75, 25, 3)
    out = model.cross_reconstruct(x, dummy)
    assert out.shape == (3, 75, 25, 3)
    # one dummy broadcasts over the batch exactly like a repeated dummy
    torch.testing.assert_close(out, model.cross_reconstruct(x, dummy.expand(3, -1, -1, -1)))
    with pytest.raises(ValueError, match=r"\(B, 75, 25, 3\)"):
        model.get_embeddings(torch.randn(2, 60, 25, 3))
    with pytest.raises(ValueError, match="dummy"):
        model.cross_reconstruct(x, torch.randn(1, 75, 24, 3))


def test_streaming_graph_equals_cross_reconstruction() -> None:
    torch.manual_seed(1)
    model = PMRModel().eval()
    x = torch.randn(5, 75, 25, 3) * 0.3
    dummy = torch.randn(1, 75, 25, 3) * 0.3
    with torch.no_grad():
        ref = model.cross_reconstruct(x, dummy)
        code = model.privacy_code(dummy)
        assert code.shape == (1, 128, 16)
        torch.testing.assert_close(model.anonymize_with_code(x, code), ref)
        graph = AnonymizerGraph(model, code).eval()
        torch.testing.assert_close(graph(x), ref)
        # a different dummy gives a different output: the code is really used
        other = model.cross_reconstruct(x, dummy.flip(1) + 0.2)
        assert (other - ref).abs().max() > 1e-4


def test_encoder_decoder_building_blocks() -> None:
    enc, dec = Encoder((128, 16)), Decoder((128, 16))
    z = enc(torch.randn(2, 75, 25, 3))
    assert z.shape == (2, 128, 16)
    assert dec(torch.cat([z, z], dim=1)).shape == (2, 75, 75)


def test_heads_return_logits_and_probabilities() -> None:
    torch.manual_seed(2)
    clf = EmbeddingClassifier(40).eval()
    logits = clf(torch.randn(4, 128, 16))
    assert logits.shape == (4, 40)
    # logits, not probabilities: rows do not sum to 1 and values can be negative
    assert not torch.allclose(logits.softmax(1).sum(1), logits.sum(1))
    assert (logits < 0).any()
    q = QualityController()
    p = q(torch.randn(6, 75, 25, 3))
    assert p.shape == (6, 1) and bool(((p > 0) & (p < 1)).all())
    adv = Adversaries(num_performers=40, num_actions=12)
    assert adv.util_coop.num_classes == 12 and adv.priv_adv.num_classes == 40
    with pytest.raises(ValueError, match="at least 2 classes"):
        EmbeddingClassifier(1)


def test_checkpoint_round_trip_with_config_and_provenance(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = PMRModel()
    cfg = Config()
    cfg.training.batch_size = 64
    path = save_checkpoint(
        tmp_path / "m.pt", Checkpoint(cfg, model.state_dict(), {"dataset": "standin", "seed": 3})
    )
    loaded, ckpt = load_model(path)
    assert ckpt.config.training.batch_size == 64
    assert ckpt.provenance == {"dataset": "standin", "seed": 3}
    x = torch.randn(2, 75, 25, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x))


def test_checkpoint_of_another_shape_is_refused(tmp_path: Path) -> None:
    cfg = Config()
    cfg.model.encoded_channels = (256, 32)
    dmr = PMRModel(encoded_channels=(256, 32))
    path = save_checkpoint(tmp_path / "dmr.pt", Checkpoint(cfg, dmr.state_dict()))
    # the config says (256, 32): loading builds the right network
    model, _ = load_model(path)
    assert model.config.encoded_channels == (256, 32)
    # a config that lies about the shape is refused with the tensor named
    cfg2 = Config()
    path2 = save_checkpoint(tmp_path / "liar.pt", Checkpoint(cfg2, dmr.state_dict()))
    with pytest.raises(CheckpointError, match=r"liar\.pt.*shape mismatch.*motion_encoder"):
        load_model(path2)


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_garbage_files_are_refused(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.pt"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(p)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


class Evil:
    """An arbitrary Python object: unpickling it would run code from the file."""


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "evil.pt"
    torch.save({"format": "pmr-stream-checkpoint", "version": 1, "payload": Evil()}, p)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(p)


def test_foreign_dict_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "plain.pt"
    torch.save({"model": PMRModel().state_dict()}, p)
    with pytest.raises(CheckpointError, match="not a pmr-stream checkpoint"):
        load_checkpoint(p)
