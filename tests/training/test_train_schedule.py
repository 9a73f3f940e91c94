"""``pmr train``'s schedule: ``--epochs-scale 1`` is the recipe unchanged, a small scale makes a
quick run quick (every stage and every epoch shortened), and a run shows its progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pmr_stream.config import Config, DataSection, TrainingSection, paper_schedule
from pmr_training.data import DataConfig, load_clips
from pmr_training.train import Trainer, batches_per_epoch, split_validation


def _sets(tiny_npz: Path) -> tuple:
    clips = load_clips(DataConfig(path=tiny_npz, split="train", allow_unknown_gender=True))
    return split_validation(clips, DataSection().val_fraction, 0)


def test_scale_one_is_the_recipe(tiny_npz: Path, tmp_path: Path) -> None:
    """At ``epochs_scale`` 1.0 every stage runs the recipe's epochs, each over all its samples
    (the numbers come from :func:`paper_schedule` and :class:`DataSection`, not from this test)."""
    train_set, val_set = _sets(tiny_npz)
    cfg = Config()
    assert cfg.training.epochs_scale == 1.0
    trainer = Trainer(cfg, train_set, val_set, tmp_path / "run", progress=False)
    recipe = paper_schedule()
    paired = DataSection().paired_samples_per_epoch
    bs = TrainingSection().batch_size
    plans = trainer.schedule()
    assert [p.name for p in plans] == [s.name for s in recipe]
    for plan, stage in zip(plans, recipe, strict=True):
        want = paired if stage.paired else len(train_set)
        assert (plan.epochs, plan.samples) == (stage.epochs, want), plan
        assert plan.batches == batches_per_epoch(want, bs)
        loader = trainer._loader(stage, 0)
        assert len(loader.dataset) == want and len(loader) == plan.batches  # type: ignore[arg-type]
    assert trainer._val_pairs is None or len(trainer._val_pairs) == min(256, 4 * len(val_set))
    # epoch_samples changes nothing at or above 1
    for scale in (1.0, 2.0):
        cfg.training.epochs_scale = scale
        assert cfg.training.epoch_samples(paired) == paired
        assert [cfg.training.stage_epochs(s) for s in recipe] == [round(s.epochs * scale) for s in recipe]


def test_small_scale_shortens_every_stage_and_epoch(tiny_npz: Path, tmp_path: Path) -> None:
    train_set, val_set = _sets(tiny_npz)
    cfg = Config()
    cfg.training.epochs_scale = 0.02
    trainer = Trainer(cfg, train_set, val_set, tmp_path / "run", progress=False)
    plans = trainer.schedule()
    bs = cfg.training.batch_size
    assert [p.epochs for p in plans] == [max(1, round(s.epochs * 0.02)) for s in paper_schedule()]
    paired = cfg.data.paired_samples_per_epoch
    for plan, stage in zip(plans, cfg.training.stages, strict=True):
        n = paired if stage.paired else len(train_set)
        assert plan.samples == max(min(n, bs), round(n * 0.02)) < n  # shorter, and at least one batch
        loader = trainer._loader(stage, 0)
        got = sum(len(b["x1" if stage.paired else "x"]) for b in loader)
        assert len(loader) == plan.batches >= 1 and got == min(plan.samples, plan.batches * bs)
    assert sum(p.total_batches for p in plans) <= 12


@pytest.mark.slow
def test_quick_run_finishes_and_shows_progress(tiny_npz: Path, tmp_path: Path) -> None:
    """``pmr train --epochs-scale 0.02`` on a tiny set: a few batches, progress bars with totals."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "pmr_stream.cli", "train", "--data", str(tiny_npz), "--epochs-scale", "0.02",
           "--threads", "1", "--checkpoint-dir", str(run)]  # fmt: skip
    t0 = time.perf_counter()
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "160"}
    )
    seconds = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr[-2000:]
    assert seconds < 240, seconds  # generous: a busy 2-core machine; about 30 s when quiet
    stages = [s.name for s in paper_schedule()]
    epochs = [max(1, round(s.epochs * 0.02)) for s in paper_schedule()]
    train_set, _ = _sets(tiny_npz)
    tc = TrainingSection(epochs_scale=0.02)
    per_epoch = [
        batches_per_epoch(tc.epoch_samples(DataSection().paired_samples_per_epoch if s.paired else len(train_set)),
                          tc.batch_size)
        for s in paper_schedule()
    ]  # fmt: skip
    totals = [e * b for e, b in zip(epochs, per_epoch, strict=True)]
    assert f"6 stages, {sum(totals)} batches in all" in res.stdout and sum(totals) <= 12
    bars = res.stderr.replace("\r", "\n")
    for k, (name, n) in enumerate(zip(stages, totals, strict=True), start=1):
        assert any(f"stage {k}/6 {name}: 100%" in ln and f"{n}/{n} [" in ln for ln in bars.splitlines()), name
    rows = json.loads((run / "log.json").read_text())
    assert [r["stage"] for r in rows] == [n for n, e in zip(stages, epochs, strict=True) for _ in range(e)]
    assert (run / "last.pt").is_file() and (run / "curves.png").is_file()


def test_epochs_scale_must_be_positive(tiny_npz: Path, tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pmr_stream.cli", "train", "--data", str(tiny_npz), "--epochs-scale", "0",
         "--checkpoint-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode != 0 and "--epochs-scale must be > 0" in res.stderr
    assert "Traceback" not in res.stderr
