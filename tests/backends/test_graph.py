"""The folded streaming graph equals the network as defined, and does half the arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pmr_stream.backends import ModelSource
from pmr_stream.backends.artifacts.onnx_export import relative_error
from pmr_stream.backends.graph import FoldedAnonymizerGraph, build_graph, graph_flops
from pmr_stream.model.pmr import DMR_CHANNELS, AnonymizerGraph, PMRModel


def _run(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("which", ["random", "real"])
def test_folded_equals_reference(
    source: ModelSource, random_windows: np.ndarray, real_windows: np.ndarray, which: str
) -> None:
    x = random_windows if which == "random" else real_windows
    ref = _run(AnonymizerGraph(source.model, source.code), x)
    out = _run(build_graph(source.model, source.code, "folded"), x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert relative_error(out, ref) < 1e-5


def test_folded_rows_are_independent(source: ModelSource, random_windows: np.ndarray) -> None:
    """Batch 1 gives what the same window gives inside a batch (CUDA-graph buckets rely on it)."""
    g = build_graph(source.model, source.code, "folded")
    whole = _run(g, random_windows)
    one = _run(g, random_windows[3:4])
    np.testing.assert_allclose(one[0], whole[3], rtol=0, atol=1e-5 * np.abs(whole).max())


def test_folded_works_for_the_dmr_shape() -> None:
    """Nothing in the fold is specific to (128, 16): the DMR baseline's (256, 32) folds too."""
    torch.manual_seed(3)
    model = PMRModel(encoded_channels=DMR_CHANNELS).eval()
    code = model.privacy_code(torch.randn(1, 75, 25, 3) * 0.3)
    x = (np.random.default_rng(0).standard_normal((3, 75, 25, 3)) * 0.3).astype(np.float32)
    assert (
        relative_error(_run(build_graph(model, code, "folded"), x), _run(AnonymizerGraph(model, code), x))
        < 1e-5
    )


def test_flops_network_and_folded(source: ModelSource) -> None:
    ref = graph_flops(build_graph(source.model, source.code, "reference"))
    folded = graph_flops(build_graph(source.model, source.code, "folded"))
    assert 40.5e6 < ref < 41.5e6  # this network's count (41.0 MFLOP per window), pinned: a change shows here
    assert folded < 0.55 * ref


def test_the_folded_structure(source: ModelSource) -> None:
    g = build_graph(source.model, source.code, "folded")
    assert isinstance(g, FoldedAnonymizerGraph)
    assert [(b.pooled_h, b.pooled_w) for b in g.encoder_blocks] == [(13, 2), (7, 2), (4, 2), (3, 2)]
    for layer in g.layers:
        assert layer.m == 2 and len(layer.sizes) == 2  # every column reads (a, a, b) or (a, b, b)


def test_building_does_not_change_the_model(source: ModelSource) -> None:
    before = {k: v.clone() for k, v in source.model.state_dict().items()}
    build_graph(source.model, source.code, "folded")
    assert all(torch.equal(before[k], v) for k, v in source.model.state_dict().items())


def test_unknown_graph_kind(source: ModelSource) -> None:
    with pytest.raises(ValueError, match="unknown graph kind 'fast'"):
        build_graph(source.model, source.code, "fast")


@pytest.mark.parametrize("part", ["decoder", "encoder", "pool"])
def test_refuses_a_network_it_cannot_fold(part: str) -> None:
    model = PMRModel().eval()
    if part == "decoder":
        model.decoder.deconvs[1] = nn.ConvTranspose1d(256, 128, kernel_size=3, stride=2, padding=1)
    elif part == "encoder":
        model.motion_encoder.convs[2] = nn.Conv2d(24, 32, kernel_size=3, stride=2, padding=1)
    else:
        model.motion_encoder.pool = nn.MaxPool2d(3)
    with pytest.raises(ValueError, match="cannot fold"):
        FoldedAnonymizerGraph(model, torch.zeros(1, 128, 16))
