"""The default anonymizer's training recipe and its command-line flags (no torch import here:
``pmr`` builds its parsers without loading torch). See :mod:`training.train_retarget`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pmr_stream.model.privacy_dial import check_privacy
from pmr_stream.synth.dataset import DEFAULT_STANDIN_PATH


@dataclass
class RetargetRecipe:
    """Everything the recipe's run depends on (saved in every checkpoint's provenance)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    adv_lr: float = 2e-3
    privacy: str = "balanced"
    fidelity: float = 1.0
    identity: float = 1.0
    gender: float = 0.5
    utility: float = 1.0
    smooth: float = 1.0
    embedding: float = 0.1
    adv_updates: int = 1
    adv_reset: int = 6
    recogniser_epochs: int = 10
    #: SGN size (embed, feature, segments) of the output adversaries and the utility critic
    adversary_sgn: tuple[int, int, int] = (24, 192, 12)
    seed: int = 0

    def __post_init__(self) -> None:
        check_privacy(self.privacy, "recipe.privacy")
        for k in ("epochs", "batch_size", "adv_updates", "recogniser_epochs"):
            if getattr(self, k) < 0 or (k != "recogniser_epochs" and getattr(self, k) == 0 and k != "epochs"):
                raise ValueError(f"recipe.{k} must be positive, got {getattr(self, k)}")

    def sgn(self) -> Any:
        """The adversaries' :class:`training.sgn.SGNConfig`."""
        from .sgn import SGNConfig

        e, f, seg = self.adversary_sgn
        return SGNConfig(embed=e, feature=f, segments=seg)


#: The recipe's weights and schedule that ``pmr train-default`` exposes (NAME -> help).
_RECIPE_FLAGS: dict[str, str] = {
    "epochs": "epochs of the network (default 10)", "batch_size": "windows per step (default 64)",
    "lr": "network learning rate (cosine decay; default 1e-3)", "adv_lr": "adversaries' learning rate (default 2e-3)",
    "fidelity": "weight of the joint error against the retarget (default 1)",
    "identity": "weight of the output re-ID adversary (default 1; 0 switches it off)",
    "gender": "weight of the output gender adversary (default 0.5)",
    "utility": "weight of the frozen action recogniser (default 1)", "smooth": "weight of the acceleration term (default 1)",
    "embedding": "weight of the paper's embedding classifiers on E_M (default 0.1)",
    "adv_reset": "re-initialise the output adversaries every N epochs (default 6; 0 never)",
    "recogniser_epochs": "epochs of the utility critic (default 10)", "seed": "seed (default 0)",
}  # fmt: skip


def add_threads_argument(p: Any) -> None:
    """``--threads N``: torch's CPU threads (the training and evaluation commands' one declaration)."""
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 is often faster on a machine busy with other work)")  # fmt: skip


def add_recipe_arguments(p: Any) -> None:
    """The flags of ``pmr train-default`` (one per :class:`RetargetRecipe` field it exposes)."""
    p.add_argument("--data", default=str(DEFAULT_STANDIN_PATH), help="stand-in .npz (generated if missing)")
    p.add_argument("--dummy", default=None, help="dummy recording (default: the shipped dummy)")
    p.add_argument("--checkpoint-dir", default="runs/default", help="where last.pt/final.pt/log.json go")
    p.add_argument("--privacy", default=RetargetRecipe.privacy, help="dial level the residual is trained at")
    add_threads_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    defaults = RetargetRecipe()
    for name, text in _RECIPE_FLAGS.items():
        kind = type(getattr(defaults, name))
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text)


def recipe_from_args(args: Any) -> RetargetRecipe:
    kw = {n: getattr(args, n) for n in _RECIPE_FLAGS if getattr(args, n, None) is not None}
    return RetargetRecipe(privacy=args.privacy, **kw)


__all__ = ["RetargetRecipe", "add_recipe_arguments", "add_threads_argument", "recipe_from_args"]
