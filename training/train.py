"""PMR's adversarial training: the paper's six sub-stages, resumable, logged and plotted.

    pmr train --dataset standin --data data/standin.npz --epochs-scale 0.1 --checkpoint-dir runs/pmr

Stages (``pmr_stream.config.paper_schedule``): 1 paired and 2 unpaired autoencoder
training; 3 paired and 4 unpaired classifier/Q training (3 updates per batch);
5 unpaired and 6 paired joint training (the autoencoder with the adversarial and
cooperative terms and Q, alternating with 3 resp. 1 classifier updates per batch).
The autoencoder's optimiser holds only the encoders and decoder; the classifiers
and Q have their own. Every epoch ends with a validation pass, a line in
``log.csv``/``log.json``, ``last.pt`` (resume point) and, when the validation
score improves, ``best.pt``. Ctrl-C keeps every finished epoch: rerun with ``--resume``.

``epochs_scale`` below 1 (a quick run) shortens every stage: ``max(1, round(epochs * scale))``
epochs, each of ``round(samples * scale)`` samples but at least one batch
(:meth:`pmr_stream.config.TrainingSection.epoch_samples`), validation passes included; 1.0
is the recipe unchanged (:meth:`Trainer.schedule` lists what a run will do). Each stage shows
one progress bar over all its batches, with the total and an ETA, named ``stage k/n``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler
from tqdm import tqdm

from pmr_stream.config import Config, StageSection
from pmr_stream.model.checkpoint import Checkpoint, git_commit, load_checkpoint, save_checkpoint
from pmr_stream.model.heads import Adversaries
from pmr_stream.model.pmr import PMRModel

from . import losses as L
from .data import ClipSet
from .datasets import PairedDataset, SkeletonDataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagePlan:
    """What one stage of a run does: ``epochs`` epochs of ``samples`` samples (windows or
    paired quadruplets), ``batches`` optimisation steps per epoch."""

    name: str
    epochs: int
    samples: int
    batches: int

    @property
    def total_batches(self) -> int:
        return self.epochs * self.batches


def batches_per_epoch(samples: int, batch_size: int) -> int:
    """Steps of an epoch of ``samples`` samples: the last partial batch is dropped, unless it is
    the only one."""
    if samples <= 0:
        return 0
    return samples // batch_size if samples > batch_size else 1


@dataclass
class TrainResult:
    best_path: Path | None
    last_path: Path
    history: list[dict[str, Any]]
    seconds: float
    interrupted: bool = False
    plots: list[Path] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


class Trainer:
    """Runs the schedule of ``config.training.stages`` on a training and a validation clip set."""

    def __init__(
        self,
        config: Config,
        train_set: ClipSet,
        val_set: ClipSet,
        checkpoint_dir: str | Path,
        *,
        provenance: dict[str, Any] | None = None,
        use_mlflow: bool = False,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.train_set = train_set
        self.val_set = val_set
        self.dir = Path(checkpoint_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        self.provenance = dict(provenance or {})
        tc = config.training
        self.device = torch.device(tc.device)
        seed_everything(tc.seed)
        self.model = PMRModel(config.model.T, config.model.encoded_channels).to(self.device)
        self.adv: Adversaries | None = None
        if tc.use_adversaries:
            self.adv = Adversaries(
                train_set.num_performers, train_set.num_actions, config.model.encoded_channels
            ).to(self.device)
        # The autoencoder's optimiser holds only E_M, E_P and D (the paper's code also stepped
        # the adversaries and Q with it).
        self.ae_opt = torch.optim.AdamW(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        self.adv_opt = (
            torch.optim.AdamW(self.adv.parameters(), lr=tc.adv_lr, weight_decay=tc.weight_decay)
            if self.adv
            else None
        )
        self.history: list[dict[str, Any]] = []
        self.best_score = math.inf
        self.position = (0, 0)  # (stage index, epochs finished in that stage)
        self.mlflow: Any = None
        if use_mlflow:
            try:
                import mlflow
            except ImportError as exc:
                raise RuntimeError("--use-mlflow needs the mlflow package: pip install mlflow") from exc
            self.mlflow = mlflow
        try:
            self._val_pairs: Any = PairedDataset(
                val_set, crop="centre", seed=tc.seed + 1, length=tc.epoch_samples(min(256, 4 * len(val_set)))
            )
        except ValueError:
            log.warning("validation clips cannot form paired quadruplets: validating reconstruction only")
            self._val_pairs = None
        self._val_single = SkeletonDataset(val_set, crop="centre")

    # ------------------------------------------------------------------ loaders

    def _epoch_samples(self, stage: StageSection) -> int:
        """Samples of one epoch of ``stage``: paired quadruplets or training windows, after ``epochs_scale``."""
        tc = self.config.training
        n = self.config.data.paired_samples_per_epoch if stage.paired else len(self.train_set)
        return tc.epoch_samples(n)

    def schedule(self) -> list[StagePlan]:
        """The stages this run goes through (stages without adversaries to train left out)."""
        tc = self.config.training
        plans = []
        for stage in tc.stages:
            if stage.trains != "ae" and self.adv is None:
                continue
            k = self._epoch_samples(stage)
            plans.append(
                StagePlan(stage.name, tc.stage_epochs(stage), k, batches_per_epoch(k, tc.batch_size))
            )
        return plans

    def _loader(self, stage: StageSection, epoch: int) -> DataLoader:
        tc = self.config.training
        seed = tc.seed * 1000 + len(self.history)
        k = self._epoch_samples(stage)
        if stage.paired:
            ds: Any = PairedDataset(self.train_set, crop=self.config.data.crop, seed=seed, length=k)
        else:
            ds = SkeletonDataset(self.train_set, crop=self.config.data.crop, seed=seed)
        g = torch.Generator()
        g.manual_seed(seed)
        if k < len(ds):  # a quick run's shortened epoch: k windows drawn at random
            sampler = RandomSampler(ds, num_samples=k, generator=g)
            return DataLoader(ds, batch_size=tc.batch_size, sampler=sampler, drop_last=k > tc.batch_size)
        return DataLoader(
            ds, batch_size=tc.batch_size, shuffle=True, drop_last=len(ds) > tc.batch_size, generator=g
        )

    # ------------------------------------------------------------------ steps

    def _ae_step(self, stage: StageSection, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        w = self.config.training.loss
        adv = self.adv if (stage.adversarial_terms and self.adv is not None) else None
        self.model.train()
        if adv is not None:
            adv.eval()  # classifiers are judges here: no dropout/batch-norm updates
        if stage.paired:
            out = L.paired_ae_loss(self.model, batch, w, adv)
        else:
            out = L.unpaired_ae_loss(self.model, batch["x"], w, adv, batch["performer"], batch["action"])
        self.ae_opt.zero_grad(set_to_none=True)
        out.total.backward()
        self.ae_opt.step()
        return out.parts

    def _adv_step(self, stage: StageSection, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        assert self.adv is not None and self.adv_opt is not None
        self.model.eval()
        self.adv.train()
        with torch.no_grad():
            if stage.paired:
                x = torch.cat([batch["x1"], batch["x2"], batch["y1"], batch["y2"]])
                perf, act = L.quadruplet_labels(batch)
            else:
                x, perf, act = batch["x"], batch["performer"], batch["action"]
            motion, privacy = self.model.get_embeddings(x)
            fake = self.model.decode(motion, privacy)
        cls, stats = L.classifier_loss(self.adv, motion, privacy, perf, act)
        q = L.quality_discriminator(self.adv, x, fake)
        self.adv_opt.zero_grad(set_to_none=True)
        (cls + self.config.training.loss.quality * q).backward()
        self.adv_opt.step()
        stats.update({"cls": cls.item(), "q_disc": q.item()})
        return stats

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation losses on held-out clips: reconstruction and cross reconstruction of
        paired quadruplets (centre crops), and the classifiers' accuracies."""
        self.model.eval()
        if self.adv is not None:
            self.adv.eval()
        w = self.config.training.loss
        sums: dict[str, float] = defaultdict(float)
        n = 0
        if self._val_pairs is None:
            for batch in DataLoader(self._val_single, batch_size=64):
                out = L.unpaired_ae_loss(self.model, batch["x"].to(self.device), w)
                k = batch["x"].shape[0]
                for key in ("rec", "ee", "smooth"):
                    sums[key] += out.parts[key] * k
                n += k
            res = {f"val_{k}": v / max(n, 1) for k, v in sums.items()}
            res["val_cross"] = res["val_rec"]
            res["val_score"] = w.reconstruction * res["val_rec"] + w.cross * res["val_cross"]
            return res
        loader = DataLoader(self._val_pairs, batch_size=64)
        for batch in loader:
            batch = _to(batch, self.device)
            out = L.paired_ae_loss(self.model, batch, w, None)
            k = batch["x1"].shape[0]
            for key in ("rec", "cross", "ee", "smooth", "triplet", "latent"):
                sums[key] += out.parts[key] * k
            if self.adv is not None:
                x = torch.cat([batch["x1"], batch["x2"]])
                m, p = self.model.get_embeddings(x)
                perf = torch.cat([batch["performer1"], batch["performer2"]])
                act = torch.cat([batch["action1"], batch["action2"]])
                _, stats = L.classifier_loss(self.adv, m, p, perf, act)
                for key, v in stats.items():
                    sums[key] += v * k
            n += k
        res = {f"val_{k}": v / max(n, 1) for k, v in sums.items()}
        res["val_score"] = w.reconstruction * res["val_rec"] + w.cross * res["val_cross"]
        return res

    # ------------------------------------------------------------------ checkpoints

    def _state(self) -> dict[str, Any]:
        return {
            "position": list(self.position),
            "best_score": self.best_score,
            "history_json": json.dumps(self.history),
            "ae_opt": self.ae_opt.state_dict(),
            "adv_opt": self.adv_opt.state_dict() if self.adv_opt else {},
            "torch_rng": torch.get_rng_state(),
        }

    def _checkpoint(self, with_training_state: bool) -> Checkpoint:
        prov = dict(self.provenance)
        prov.update({
            "commit": git_commit(),
            "seed": self.config.training.seed,
            "stages_done": [s.name for s in self.config.training.stages[: self.position[0]]],
            "position": list(self.position),
            "metrics": self.history[-1] if self.history else {},
        })  # fmt: skip
        return Checkpoint(
            config=self.config,
            model_state=self.model.state_dict(),
            provenance=prov,
            adversaries_state=self.adv.state_dict() if self.adv else None,
            training_state=self._state() if with_training_state else None,
        )

    def resume(self, path: str | Path | None = None) -> None:
        """Continue from ``last.pt`` (or ``path``): weights, optimisers, position, history."""
        p = Path(path) if path else self.dir / "last.pt"
        ckpt = load_checkpoint(p, map_location=str(self.device))
        if ckpt.config.model != self.config.model:
            raise ValueError(
                f"{p}: its model config {ckpt.config.model} differs from this run's {self.config.model}"
            )
        self.model.load_state_dict(ckpt.model_state)
        if self.adv is not None and ckpt.adversaries_state is not None:
            self.adv.load_state_dict(ckpt.adversaries_state)
        st = ckpt.training_state
        if not st:
            raise ValueError(f"{p}: holds no training state to resume from (an inference-only checkpoint)")
        self.ae_opt.load_state_dict(st["ae_opt"])
        if self.adv_opt is not None and st["adv_opt"]:
            self.adv_opt.load_state_dict(st["adv_opt"])
        self.position = (int(st["position"][0]), int(st["position"][1]))
        self.best_score = float(st["best_score"])
        self.history = json.loads(st["history_json"])
        torch.set_rng_state(st["torch_rng"])
        log.info("resumed from %s at stage %d, epoch %d", p, *self.position)

    # ------------------------------------------------------------------ the loop

    def _stage_batches(self, stage: StageSection, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        for batch in self._loader(stage, epoch):
            yield _to(batch, self.device)

    def run(self) -> TrainResult:
        tc = self.config.training
        print(f"pmr train: config\n{self.config.to_json()}", flush=True)
        t0 = time.perf_counter()
        interrupted = False
        plans = {p.name: p for p in self.schedule()}
        total = sum(p.total_batches for p in plans.values())
        print(f"pmr train: {len(plans)} stages, {total} batches in all (epochs_scale {tc.epochs_scale:g}): "
              + ", ".join(f"{p.name} {p.epochs}x{p.batches}" for p in plans.values()), flush=True)  # fmt: skip
        try:
            for si in range(self.position[0], len(tc.stages)):
                stage = tc.stages[si]
                if stage.name not in plans:
                    log.info("stage %s skipped: no adversaries in this configuration", stage.name)
                    self.position = (si + 1, 0)
                    continue
                plan = plans[stage.name]
                first = self.position[1] if si == self.position[0] else 0
                k = list(plans).index(stage.name) + 1
                bar = None if plan.total_batches == 0 else tqdm(
                    total=plan.total_batches, initial=first * plan.batches, desc=f"stage {k}/{len(plans)} {stage.name}",
                    disable=not self.progress, dynamic_ncols=True, unit="batch",
                )  # fmt: skip
                try:
                    for ep in range(first, plan.epochs):
                        self._run_epoch(si, stage, ep, plan.epochs, bar)
                finally:
                    if bar is not None:
                        bar.close()
                self.position = (si + 1, 0)
        except KeyboardInterrupt:
            interrupted = True
            log.warning(
                "interrupted: every finished epoch is in %s; continue with --resume", self.dir / "last.pt"
            )
        seconds = time.perf_counter() - t0
        plots = [] if not self.history else [plot_history(self.history, self.dir / "curves.png")]
        best = self.dir / "best.pt"
        return TrainResult(
            best if best.exists() else None, self.dir / "last.pt", self.history, seconds, interrupted, plots
        )

    def _run_epoch(self, si: int, stage: StageSection, ep: int, epochs: int, bar: Any = None) -> None:
        """One epoch of ``stage``; ``bar``: the stage's progress bar (advanced by one per batch)."""
        tc = self.config.training
        sums: dict[str, float] = defaultdict(float)
        n = 0
        t0 = time.perf_counter()
        for batch in self._stage_batches(stage, ep):
            parts: dict[str, float] = {}
            if stage.trains in ("adv", "both"):
                for _ in range(stage.adv_updates):
                    parts.update(self._adv_step(stage, batch))
            if stage.trains in ("ae", "both"):
                parts.update(self._ae_step(stage, batch))
            for k, v in parts.items():
                sums[k] += v
            n += 1
            if bar is not None:
                shown: dict[str, str] = {"epoch": f"{ep + 1}/{epochs}"}
                shown.update({k: f"{sums[k] / n:.4g}" for k in ("rec", "cross", "cls", "total") if k in sums})
                bar.set_postfix(shown, refresh=False)
                bar.update(1)
        row: dict[str, Any] = {
            "stage": stage.name,
            "stage_index": si,
            "epoch": ep + 1,
            "global_epoch": len(self.history) + 1,
        }
        row.update({f"train_{k}": v / max(n, 1) for k, v in sums.items()})
        row.update(self.validate())
        row["seconds"] = time.perf_counter() - t0
        self.history.append(row)
        self.position = (si, ep + 1)
        # best by validation among epochs that train the autoencoder in the schedule's
        # final phase (adversarial stages), so the kept model is an anonymizer, not a
        # plain autoencoder from stage 2
        final_phase = any(s.adversarial_terms for s in tc.stages) and self.adv is not None
        eligible = stage.trains != "adv" and (stage.adversarial_terms or not final_phase)
        if eligible and row["val_score"] < self.best_score:
            self.best_score = row["val_score"]
            row["best"] = True
            save_checkpoint(self.dir / "best.pt", self._checkpoint(with_training_state=False))
        save_checkpoint(self.dir / "last.pt", self._checkpoint(with_training_state=True))
        write_logs(self.history, self.dir)
        if self.mlflow is not None:
            self.mlflow.log_metrics(
                {k: v for k, v in row.items() if isinstance(v, float)}, step=row["global_epoch"]
            )
        log.info(
            "%s epoch %d/%d: train rec %.4g, val rec %.4g, val cross %.4g (%.1fs)", stage.name, ep + 1, epochs,
            row.get("train_rec", float("nan")), row["val_rec"], row["val_cross"], row["seconds"],
        )  # fmt: skip


def write_logs(history: list[dict[str, Any]], out_dir: Path) -> None:
    """Every loss of every epoch as ``log.json`` and ``log.csv``."""
    (out_dir / "log.json").write_text(json.dumps(history, indent=1))
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    with open(out_dir / "log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def plot_history(history: list[dict[str, Any]], path: Path) -> Path:
    """Training curves (PNG): losses per epoch, validation beside, stage borders marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["global_epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    panels = [
        ("reconstruction", ["train_rec", "train_cross", "val_rec", "val_cross"], True),
        ("motion terms", ["train_ee", "train_smooth", "train_triplet", "train_latent"], True),
        (
            "classifier accuracy (val)",
            ["val_acc_priv_adv", "val_acc_priv_coop", "val_acc_util_adv", "val_acc_util_coop"],
            False,
        ),
    ]
    for ax, (title, keys, logy) in zip(axes, panels, strict=True):
        for k in keys:
            xs = [xi for xi, r in zip(x, history, strict=True) if k in r]
            ys = [r[k] for r in history if k in r]
            if ys:
                ax.plot(xs, ys, label=k, marker="." if len(ys) < 30 else None)
        prev = None
        for xi, r in zip(x, history, strict=True):
            if r["stage"] != prev and prev is not None:
                ax.axvline(xi - 0.5, color="grey", lw=0.8, ls=":")
            prev = r["stage"]
        ax.set_title(title)
        ax.set_xlabel("epoch (all stages)")
        if logy and any(k in r for r in history for k in keys):
            ax.set_yscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:  # e.g. the DMR baseline has no classifiers to plot
            ax.text(
                0.5,
                0.5,
                "not trained in this run",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="grey",
            )
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- command line


def ensure_standin(path: str | Path, seed: int = 0) -> Path:
    """The stand-in dataset at ``path``; generated (default spec, ``seed``) when missing."""
    from pmr_stream.synth import StandinSpec, generate_dataset

    p = Path(path)
    if p.exists():
        return p
    log.warning("stand-in dataset %s not found: generating it (seed %d)", p, seed)
    print(f"generating the stand-in dataset at {p} (seed {seed}) ...", flush=True)
    return Path(generate_dataset(StandinSpec(seed=seed), p, fmt="npz", progress=True))


def split_validation(clips: ClipSet, fraction: float, seed: int) -> tuple[ClipSet, ClipSet]:
    """Hold out ``fraction`` of the clips (random, seeded) for validation."""
    rng = np.random.default_rng(seed)
    n = len(clips)
    n_val = max(1, int(round(n * fraction))) if n > 1 else 0
    perm = rng.permutation(n)
    val = np.zeros(n, bool)
    val[perm[:n_val]] = True
    return clips.subset(~val), clips.subset(val)


def configure(args: Any) -> Config:
    """The run's :class:`Config` from the paper's defaults and the command-line flags."""
    cfg = Config()
    if getattr(args, "config", None):
        cfg = Config.from_json(Path(args.config).read_text())
    if args.dmr:
        cfg.model.encoded_channels = (256, 32)
        cfg.training.use_adversaries = False
    cfg.data.dataset = args.dataset
    cfg.data.path = str(args.data)
    tc = cfg.training
    for flag, attr in (("batch_size", "batch_size"), ("lr", "lr"), ("adv_lr", "adv_lr"), ("epochs_scale", "epochs_scale"),
                       ("seed", "seed"), ("device", "device")):  # fmt: skip
        v = getattr(args, flag, None)
        if v is not None:
            setattr(tc, attr, v)
    if not tc.epochs_scale > 0:
        raise ValueError(f"--epochs-scale must be > 0, got {tc.epochs_scale}")
    if args.alpha_priv is not None:
        tc.loss.alpha_priv = args.alpha_priv
    if args.alpha_util is not None:
        tc.loss.alpha_util = args.alpha_util
    for item in args.loss_weight or []:
        name, _, value = item.partition("=")
        if not hasattr(tc.loss, name) or not value:
            raise ValueError(
                f"--loss-weight {item!r}: expected NAME=VALUE with NAME one of {sorted(vars(tc.loss))}"
            )
        setattr(tc.loss, name, float(value))
    if args.stage_epochs:
        epochs = [int(e) for e in args.stage_epochs.split(",")]
        if len(epochs) != len(tc.stages):
            raise ValueError(
                f"--stage-epochs needs {len(tc.stages)} comma-separated numbers, got {args.stage_epochs!r}"
            )
        for st, e in zip(tc.stages, epochs, strict=True):
            st.epochs = e
    if args.paired_samples is not None:
        cfg.data.paired_samples_per_epoch = args.paired_samples
    return cfg


def warn_if_busy() -> None:
    """A hint when the machine is busier than its cores and torch runs several threads (they then
    wait for each other: on 2 cores at load 7-8 a quick run took 2-7 times longer than with 1)."""
    load, cores = (os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0), os.cpu_count() or 1
    if load > cores and torch.get_num_threads() > 1:
        log.warning("the machine is busy (load %.1f on %d cores): --threads 1 is often faster", load, cores)


def train_command(args: Any) -> int:
    """``pmr train``: see ``pmr train --help``."""
    from .data import DataConfig, load_clips

    cfg = configure(args)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    else:
        warn_if_busy()
    data_path = Path(args.data)
    if cfg.data.dataset == "standin":
        data_path = ensure_standin(data_path, seed=0)
    clips = load_clips(DataConfig(dataset=cfg.data.dataset, path=data_path, split="train", genders=args.genders,
                                  allow_unknown_gender=args.genders is None))  # fmt: skip
    train_set, val_set = split_validation(clips, cfg.data.val_fraction, cfg.training.seed)
    print(f"pmr train: {len(train_set)} training and {len(val_set)} validation clips from {data_path} "
          f"({clips.num_performers} performers, {clips.num_actions} actions)", flush=True)  # fmt: skip
    provenance = {
        "dataset": cfg.data.dataset, "data": str(data_path), "model_id": args.model_id,
        "command": " ".join(["pmr", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("pmr") else " ".join(sys.argv),
    }  # fmt: skip
    trainer = Trainer(cfg, train_set, val_set, args.checkpoint_dir, provenance=provenance,
                      use_mlflow=args.use_mlflow, progress=not args.quiet)  # fmt: skip
    if args.resume:
        trainer.resume()
    result = trainer.run()
    print(f"pmr train: {'interrupted' if result.interrupted else 'done'} after {result.seconds:.0f} s; "
          f"last {result.last_path}; best {result.best_path}; curves {[str(p) for p in result.plots]}")  # fmt: skip
    return 130 if result.interrupted else 0
