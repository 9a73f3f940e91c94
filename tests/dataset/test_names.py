"""Output names of a dataset run: what they keep, what they replace, and that they are checked."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pmr_stream.anonymizer.window import WindowPolicy
from pmr_stream.dataset.names import NameOptions, output_name, output_names, performer_token
from pmr_stream.offline import AnonymizeOptions, _policy_plan, plan_track

KEY = b"k" * 32


def test_ntu_names_keep_all_but_the_performer() -> None:
    opts = NameOptions(key=KEY)
    a = output_name("S001C002P003R002A060.skeleton", ".skeleton", opts)
    assert re.fullmatch(r"S001C002p[0-9a-f]{8}R002A060\.skeleton", a)
    assert a[8:17] == performer_token(KEY, 3)
    assert output_name("S017C003P003R001A120.skeleton", ".skeleton", opts)[8:17] == a[8:17]  # same performer
    assert output_name("S001C002P004R002A060.skeleton", ".skeleton", opts) != a
    assert output_name("S001C002P003R002A060.skeleton", ".skeleton", NameOptions(key=b"x" * 32)) != a
    other = output_name("alice/walk_03.npz", ".npz", opts)
    assert re.fullmatch(r"d[0-9a-f]{10}/f[0-9a-f]{16}\.npz", other) and "alice" not in other
    assert output_name("alice/walk_03.npz", ".npz", NameOptions(key=KEY, keep_dirs=True)).startswith(
        "alice/f"
    )
    assert output_name("alice/walk_03.npz", ".npz", NameOptions(policy="keep")) == "alice/walk_03.npz"
    assert "k" * 16 not in repr(opts)  # the key never shows


def test_clashes_are_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="would both be written as"):
        output_names(
            [("a/x.skeleton", ".skeleton"), ("a/X.skeleton", ".skeleton")], NameOptions(policy="keep")
        )
    # two performers with one token: with 32-bit tokens a clash is too rare to meet here, so the
    # tokens are cut to 1 hex digit (16 values for 39 performers) and go through the same check
    import pmr_stream.dataset.names as names

    monkeypatch.setattr(names, "PERFORMER_TOKEN_HEX", 1)
    rels = [(f"S001C001P{p:03d}R001A001.skeleton", ".skeleton") for p in range(1, 40)]
    with pytest.raises(ValueError, match="get the same token"):
        output_names(rels, NameOptions(key=KEY))
    with pytest.raises(ValueError, match="deployment key"):
        NameOptions()


def test_the_last_policy_plan_is_the_window_store_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((130, 25, 3)) * 0.3 + [0.1, 0.2, 3.0]).astype(np.float32)
    opts = AnonymizeOptions(bones="model")
    fast = plan_track(x, opts)
    store = _policy_plan(x, WindowPolicy.parse("last"), opts)
    np.testing.assert_array_equal(fast.windows, store.windows)
    res = (store.windows * 0.9 + 0.01).astype(np.float32)  # any network output
    np.testing.assert_array_equal(fast.finish(res), store.finish(res))
