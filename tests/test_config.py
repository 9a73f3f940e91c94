"""The configuration tree: the paper's defaults, overrides, JSON round trip, strict loading."""

from __future__ import annotations

import json

import pytest

from pmr_stream.config import Config


def test_paper_defaults() -> None:
    c = Config()
    assert c.model.encoded_channels == (128, 16) and c.model.T == 75
    assert (c.training.batch_size, c.training.lr) == (32, 1e-5)
    w = c.training.loss
    assert (w.reconstruction, w.cross, w.end_effector, w.smoothness, w.triplet, w.latent, w.quality) == (
        2.0, 0.1, 1.0, 3.0, 1.0, 10.0, 1.0,
    )  # fmt: skip
    assert [s.epochs for s in c.training.stages] == [5, 20, 20, 50, 100, 100]
    assert [s.paired for s in c.training.stages] == [True, False, True, False, False, True]
    assert [s.adv_updates for s in c.training.stages][3:] == [3, 3, 1]
    assert c.data.train_cameras == (2, 3) and c.data.test_cameras == (1,)


def test_python_api_and_round_trip() -> None:
    c = Config()
    c.training.batch_size = 64
    c.training.epochs_scale = 0.1
    back = Config.from_json(c.to_json())
    assert back == c
    assert back.training.stage_epochs(back.training.stages[0]) == 1  # 5 * 0.1 rounds to at least 1
    assert back.training.stage_epochs(back.training.stages[4]) == 10


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("training", "batch_size"), "32", "expected an integer"),
        (("training", "bogus"), 1, "unknown field"),
        (("data", "dataset"), "kinetics", "not one of"),
        (("model", "encoded_channels"), [128], "expected 2 values"),
        (("training", "loss", "alpha_priv"), True, "expected a number"),
    ],
)
def test_bad_values_are_named(path: tuple[str, ...], value: object, needle: str) -> None:
    d = json.loads(Config().to_json())
    node = d
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=needle) as info:
        Config.from_dict(d)
    assert ".".join(path[:-1]) in str(info.value)
