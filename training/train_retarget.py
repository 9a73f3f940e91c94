"""Training recipe of the default anonymizer: the PMR network with the "retarget" head.

The network (E_M, E_P, D; :class:`pmr_stream.model.pmr.PMRModel` with ``head="retarget"``) is
specialised for the one constant dummy the deployment uses. Its decoder outputs a residual on
bone directions around the identity-normalising FK retarget (:mod:`pmr_stream.model.retarget`),
so the output is the person's own motion (timing and path) on the dummy's body, and the
residual is trained to take out what still identifies the person:

* **fidelity**: squared joint error against the dial's retarget without residual (the known
  target of the motion), in units of (5 cm)^2;
* **identity adversaries on the output**, as the retrained attacker sees it: an SGN re-ID head
  and an SGN gender head are trained on the (detached) outputs every step and re-initialised
  every ``adv_reset`` epochs (a fresh attacker); the network is pushed towards their uniform
  answer (cross-entropy to the uniform distribution minus its floor log K, so 0 is "no idea");
* **utility**: an SGN action recogniser trained on the ORIGINAL training clips first (frozen;
  not the evaluation's recogniser, another seed and split) must still read the action;
* **smoothness**: the output's acceleration against the target's;
* the paper's **embedding classifiers** on E_M (performer: adversarial, action: cooperative,
  logits, cross-entropy capped at chance like :mod:`training.losses`).

Resumable: ``last.pt`` (weights, optimisers, adversaries, history) after every epoch; the
shipped weights are the last epoch's (``pmr_stream/assets``, see ``tools/ship_model.py``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from pmr_stream.config import Config
from pmr_stream.model.checkpoint import Checkpoint, git_commit, save_checkpoint
from pmr_stream.model.heads import EmbeddingClassifier
from pmr_stream.model.pmr import PMRModel
from pmr_stream.model.privacy_dial import DIAL
from pmr_stream.skeleton import CROSS_VIEW_TRAIN_CAMERAS, crop_clip

from .data import ClipSet
from .recipe import RetargetRecipe, add_recipe_arguments, recipe_from_args
from .sgn import SGNClassifier, SGNConfig

log = logging.getLogger(__name__)

#: (5 cm)^2: the fidelity loss is the mean squared joint error in this unit.
FIDELITY_SCALE_M2 = 0.05**2


def _windows(clips: ClipSet, idx: npt.NDArray[np.int64], rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(np.stack([crop_clip(clips.clips[i], "random", rng=rng) for i in idx]))


def uniform_ce(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` ``(B, K)`` against the uniform distribution minus log K (0 when uniform)."""
    return -F.log_softmax(logits, dim=1).mean(1).mean() - math.log(logits.shape[1])


def train_recogniser(clips: ClipSet, epochs: int, cfg: SGNConfig, seed: int, progress: bool) -> SGNClassifier:
    """The frozen utility critic: an SGN action recogniser trained on the original clips."""
    torch.manual_seed(seed + 17)
    g = torch.Generator().manual_seed(seed + 17)
    rng = np.random.default_rng(seed + 17)
    net = SGNClassifier(clips.num_actions, cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    n, bs = len(clips), 64
    steps = max(1, epochs * (n // bs))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    bar = tqdm(total=steps, desc="utility critic (action, originals)", disable=not progress, leave=False)
    net.train()
    for _ in range(epochs):
        perm = rng.permutation(n)
        for b in range(n // bs):
            idx = perm[b * bs : (b + 1) * bs]
            loss = F.cross_entropy(net(_windows(clips, idx, rng), g), torch.from_numpy(clips.action[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class RetargetTrainer:
    """Runs :class:`RetargetRecipe` on a clip set for one dummy; see the module docstring."""

    def __init__(
        self, recipe: RetargetRecipe, clips: ClipSet, dummy: npt.NDArray[np.float32], out_dir: str | Path,
        *, progress: bool = True, provenance: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.recipe = recipe
        self.clips = clips
        self.dummy = np.asarray(dummy, np.float32)
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        self.provenance = dict(provenance or {})
        torch.manual_seed(recipe.seed)
        self.rng = np.random.default_rng(recipe.seed)
        self.g = torch.Generator().manual_seed(recipe.seed)
        self.model = PMRModel(head="retarget")
        self.model.set_dummy(self.dummy)
        with torch.no_grad():  # the residual starts at (almost) zero: training starts from the retarget
            last = self.model.decoder.deconvs[-1]
            assert isinstance(last, torch.nn.ConvTranspose1d)
            last.weight.mul_(0.01)
        self.dummy_t = torch.from_numpy(self.dummy)[None]
        self.opt = torch.optim.AdamW(
            [p for n, p in self.model.named_parameters() if not n.startswith("retarget.")],
            lr=recipe.lr,
            weight_decay=1e-4,
        )
        k_p, k_a = clips.num_performers, clips.num_actions
        self.emb_priv = EmbeddingClassifier(k_p)
        self.emb_util = EmbeddingClassifier(k_a)
        self.adv_opt_emb = torch.optim.AdamW(
            [*self.emb_priv.parameters(), *self.emb_util.parameters()], lr=recipe.adv_lr
        )
        self._new_output_adversaries()
        self.recogniser: SGNClassifier | None = None
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0

    def _new_output_adversaries(self) -> None:
        cfg = self.recipe.sgn()
        self.adv_id = SGNClassifier(self.clips.num_performers, cfg)
        self.adv_gender = SGNClassifier(2, cfg)
        self.adv_opt = torch.optim.AdamW(
            [*self.adv_id.parameters(), *self.adv_gender.parameters()], lr=self.recipe.adv_lr
        )

    # ------------------------------------------------------------------ state

    def _state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "history_json": json.dumps(self.history), "seconds": self.seconds,
            "opt": self.opt.state_dict(), "adv_opt": self.adv_opt.state_dict(), "adv_opt_emb": self.adv_opt_emb.state_dict(),
            "adv_id": self.adv_id.state_dict(), "adv_gender": self.adv_gender.state_dict(),
            "emb_priv": self.emb_priv.state_dict(), "emb_util": self.emb_util.state_dict(),
            "recogniser": self.recogniser.state_dict() if self.recogniser is not None else {},
            "rng_json": json.dumps(self.rng.bit_generator.state), "torch_rng": torch.get_rng_state(),
            "g_rng": self.g.get_state(),
        }  # fmt: skip

    def checkpoint(self, with_state: bool) -> Checkpoint:
        cfg = Config()
        cfg.model.head = "retarget"
        prov = {**self.provenance, "recipe": asdict(self.recipe), "epochs_done": self.epoch, "commit": git_commit(),
                "train_seconds": round(self.seconds, 1), "last_epoch": self.history[-1] if self.history else {}}  # fmt: skip
        return Checkpoint(
            cfg, self.model.state_dict(), prov, training_state=self._state() if with_state else None
        )

    def resume(self, path: str | Path | None = None) -> bool:
        """Continue from ``last.pt`` (or ``path``); False when there is nothing to resume."""
        p = Path(path) if path else self.out / "last.pt"
        if not p.is_file():
            return False
        payload = torch.load(p, map_location="cpu", weights_only=True)
        st = payload["training_state"]
        self.model.load_state_dict(payload["model"])
        self.opt.load_state_dict(st["opt"])
        self.adv_id.load_state_dict(st["adv_id"])
        self.adv_gender.load_state_dict(st["adv_gender"])
        self.adv_opt.load_state_dict(st["adv_opt"])
        self.emb_priv.load_state_dict(st["emb_priv"])
        self.emb_util.load_state_dict(st["emb_util"])
        self.adv_opt_emb.load_state_dict(st["adv_opt_emb"])
        if st["recogniser"]:
            self.recogniser = SGNClassifier(self.clips.num_actions, self.recipe.sgn())
            self.recogniser.load_state_dict(st["recogniser"])
            self.recogniser.eval()
            for q in self.recogniser.parameters():
                q.requires_grad_(False)
        self.epoch = int(st["epoch"])
        self.history = json.loads(st["history_json"])
        self.seconds = float(st["seconds"])
        self.rng.bit_generator.state = json.loads(st["rng_json"])
        torch.set_rng_state(st["torch_rng"])
        self.g.set_state(st["g_rng"])
        log.info("resumed %s at epoch %d", p, self.epoch)
        return True

    # ------------------------------------------------------------------ steps

    def _outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(anonymized, target without residual, E_M embedding) of windows ``x``."""
        setting = DIAL[self.recipe.privacy]
        code = self.model.privacy_code(self.dummy_t)
        motion = self.model.motion_encoder(x)
        decoded = self.model.decode(motion, code)
        assert self.model.retarget is not None
        y = self.model.retarget(x, decoded, setting)
        with torch.no_grad():
            target = self.model.retarget(x, None, setting)
        return y, target, motion

    def _step(self, idx: npt.NDArray[np.int64]) -> dict[str, float]:
        r = self.recipe
        x = _windows(self.clips, idx, self.rng)
        pid = torch.from_numpy(self.clips.performer[idx])
        gid = torch.from_numpy(self.clips.gender[idx]).clamp_min(0)
        act = torch.from_numpy(self.clips.action[idx])
        # --- adversaries: output heads on detached outputs, embedding heads on detached E_M
        self.model.train()
        y, target, motion = self._outputs(x)
        yd, md = y.detach(), motion.detach()
        adv_loss = torch.zeros(())
        for _ in range(r.adv_updates):
            self.adv_id.train()
            self.adv_gender.train()
            adv_loss = F.cross_entropy(self.adv_id(yd, self.g), pid) + F.cross_entropy(
                self.adv_gender(yd, self.g), gid
            )
            self.adv_opt.zero_grad(set_to_none=True)
            adv_loss.backward()
            self.adv_opt.step()
        emb_loss = F.cross_entropy(self.emb_priv(md), pid) + F.cross_entropy(self.emb_util(md), act)
        self.adv_opt_emb.zero_grad(set_to_none=True)
        emb_loss.backward()
        self.adv_opt_emb.step()
        # --- the network
        fid = ((y - target) ** 2).sum(-1).mean() / FIDELITY_SCALE_M2
        acc_y, acc_t = (
            y[:, 2:] - 2 * y[:, 1:-1] + y[:, :-2],
            target[:, 2:] - 2 * target[:, 1:-1] + target[:, :-2],
        )
        smooth = ((acc_y - acc_t) ** 2).sum(-1).mean() / FIDELITY_SCALE_M2 * 100.0
        self.adv_id.eval()
        self.adv_gender.eval()
        ident = uniform_ce(self.adv_id(y))
        gend = uniform_ce(self.adv_gender(y))
        util = F.cross_entropy(self.recogniser(y), act) if self.recogniser is not None else torch.zeros(())
        cap_p, cap_a = math.log(self.clips.num_performers), math.log(self.clips.num_actions)
        emb = -F.cross_entropy(self.emb_priv(motion), pid).clamp(max=cap_p) + F.cross_entropy(
            self.emb_util(motion), act
        ).clamp(max=cap_a)
        loss = (
            r.fidelity * fid
            + r.smooth * smooth
            + r.identity * ident
            + r.gender * gend
            + r.utility * util
            + r.embedding * emb
        )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.opt.step()
        with torch.no_grad():
            adv_acc = float((self.adv_id(yd).argmax(1) == pid).float().mean())
        vals = {
            "loss": loss,
            "fidelity": fid,
            "smooth": smooth,
            "identity": ident,
            "gender": gend,
            "utility": util,
            "embedding": emb,
            "adversary": adv_loss,
        }
        return {**{k: float(v.detach()) for k, v in vals.items()}, "adv_id_acc": adv_acc}  # fmt: skip

    # ------------------------------------------------------------------ run

    def run(self) -> Path:
        """Train the remaining epochs; returns the path of ``last.pt``."""
        r = self.recipe
        if self.recogniser is None and r.utility > 0 and r.recogniser_epochs > 0:
            t0 = time.perf_counter()
            self.recogniser = train_recogniser(
                self.clips, r.recogniser_epochs, r.sgn(), r.seed, self.progress
            )
            self.seconds += time.perf_counter() - t0
        n, bs = len(self.clips), min(r.batch_size, len(self.clips))
        per_epoch = max(1, n // bs)
        last = self.out / "last.pt"
        while self.epoch < r.epochs:
            t0 = time.perf_counter()
            if r.adv_reset and self.epoch and self.epoch % r.adv_reset == 0:
                self._new_output_adversaries()  # a fresh attacker, as the retrained one is
            lr = r.lr * 0.5 * (1 + math.cos(math.pi * self.epoch / max(r.epochs, 1)))
            for group in self.opt.param_groups:
                group["lr"] = lr
            perm = self.rng.permutation(n)
            sums: dict[str, float] = {}
            bar = tqdm(range(per_epoch), desc=f"retarget epoch {self.epoch + 1}/{r.epochs}", disable=not self.progress,
                       leave=False, dynamic_ncols=True)  # fmt: skip
            for b in bar:
                m = self._step(perm[b * bs : (b + 1) * bs])
                for k, v in m.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix(fid=f"{m['fidelity']:.3f}", id=f"{m['identity']:.2f}", util=f"{m['utility']:.2f}",
                                adv=f"{m['adv_id_acc']:.2f}")  # fmt: skip
            bar.close()
            self.epoch += 1
            self.seconds += time.perf_counter() - t0
            row = {
                "epoch": self.epoch,
                "lr": lr,
                "seconds": self.seconds,
                **{k: v / per_epoch for k, v in sums.items()},
            }
            self.history.append(row)
            log.info("epoch %d: %s", self.epoch, row)
            save_checkpoint(last, self.checkpoint(with_state=True))
            (self.out / "log.json").write_text(json.dumps(self.history, indent=1))
        save_checkpoint(self.out / "final.pt", self.checkpoint(with_state=False))
        if self.history:
            plot_retarget_history(self.history, self.out / "curves.png", chance=1 / self.clips.num_performers)
        return last


def plot_retarget_history(history: list[dict[str, float]], path: Path, chance: float | None = None) -> Path:
    """Training curves of the recipe (PNG): the network's loss terms, and the output re-ID
    adversary's accuracy (the retrained attacker inside training) against ``chance`` (a fraction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = [("fidelity and smoothness", ["fidelity", "smooth"], True),
              ("adversarial and utility terms", ["identity", "gender", "utility", "embedding"], False),
              ("output re-ID adversary accuracy", ["adv_id_acc"], False)]  # fmt: skip
    for ax, (title, keys, logy) in zip(axes, panels, strict=True):
        for k in keys:
            ys = [r[k] for r in history if k in r]
            if ys:
                ax.plot(x[: len(ys)], ys, label=k, marker=".")
        if keys == ["adv_id_acc"] and chance is not None:
            ax.axhline(chance, color="grey", ls="--", lw=1, label="chance")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- command line


def model_training_clips(clips: ClipSet) -> ClipSet:
    """The default anonymizer's training clips: cameras 2 and 3 of replication 1, which share no take
    with either evaluation test set (cross-view: camera 1; cross-take: replication 2)."""
    keep = np.isin(clips.camera, CROSS_VIEW_TRAIN_CAMERAS) & (clips.replication == 1)
    return clips.subset(keep)


def train_default_command(args: Any) -> int:
    """``pmr train-default``: train (or resume) the default anonymizer; see the module docstring."""
    import sys

    from pmr_stream.assets import DEFAULT_DUMMY
    from pmr_stream.backends.base import load_dummy

    from .data import DataConfig, load_clips
    from .train import ensure_standin

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    recipe = recipe_from_args(args)
    data = ensure_standin(args.data)
    clips = model_training_clips(load_clips(DataConfig(dataset="standin", path=data, split="all")))
    dummy_path = Path(args.dummy) if args.dummy else DEFAULT_DUMMY
    prov = {"dataset": "standin", "data": str(data), "model_id": "pmr_default", "dummy": dummy_path.name,
            "train_clips": len(clips), "command": " ".join(["pmr", *sys.argv[1:]])}  # fmt: skip
    trainer = RetargetTrainer(recipe, clips, load_dummy(dummy_path), args.checkpoint_dir, progress=not args.quiet,
                              provenance=prov)  # fmt: skip
    if trainer.resume():
        print(f"pmr train-default: resuming at epoch {trainer.epoch} of {recipe.epochs}")
    print(
        f"pmr train-default: {len(clips)} clips (cameras 2, 3, replication 1), {recipe.epochs} epochs",
        flush=True,
    )
    trainer.run()
    print(
        f"pmr train-default: done in {trainer.seconds:.0f} s of training; {Path(args.checkpoint_dir) / 'final.pt'}"
    )
    return 0


__all__ = [
    "FIDELITY_SCALE_M2",
    "add_recipe_arguments",
    "model_training_clips",
    "plot_retarget_history",
    "recipe_from_args",
    "train_default_command",
    "RetargetRecipe",
    "RetargetTrainer",
    "train_recogniser",
    "uniform_ce",
]
