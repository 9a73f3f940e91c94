"""The training and evaluation commands of ``pmr``: ``train``, ``train-default``, ``evaluate`` and
``train-evaluators``. A plugin: setup.cfg registers :func:`register` under the
``pmr_stream.commands`` entry points, so the library never imports training."""

from __future__ import annotations

import argparse
from typing import Any

from pmr_stream.anonymizer.options import BONES
from pmr_stream.synth.dataset import DEFAULT_STANDIN_PATH

from .recipe import add_threads_argument


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train_command

    return train_command(args)


def cmd_train_default(args: argparse.Namespace) -> int:
    from .train_retarget import train_default_command

    return train_default_command(args)


def _add_train_arguments(p: Any) -> None:
    """The flags of ``pmr train``."""
    p.add_argument(
        "--dataset", choices=("standin", "ntu60"), default="standin", help="stand-in (default) or NTU-60"
    )
    p.add_argument("--data", default=str(DEFAULT_STANDIN_PATH),
                   help="stand-in .npz (generated if missing) or a folder of NTU-60 .skeleton files")  # fmt: skip
    p.add_argument("--genders", default=None, help="NTU-60: CSV of performer genders")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    add_threads_argument(p)
    p.add_argument("--batch-size", type=int, default=None, help="windows per step (paper 32)")
    p.add_argument("--lr", type=float, default=None, help="autoencoder learning rate (paper 1e-5)")
    p.add_argument("--adv-lr", type=float, default=None, help="classifier/Q learning rate (paper 1e-5)")
    p.add_argument(
        "--epochs-scale", type=float, default=None,
        help="multiply every stage's epochs (at least 1 each); below 1 every epoch shrinks too, to that "
        "fraction of its samples (at least one batch): 0.02 on a small set is a smoke test of a few batches",
    )  # fmt: skip
    p.add_argument(
        "--stage-epochs", default=None, help="six comma-separated epoch counts (default 5,20,20,50,100,100)"
    )
    p.add_argument(
        "--paired-samples", type=int, default=None, help="paired quadruplets per epoch (default 2000)"
    )
    p.add_argument(
        "--alpha-priv",
        type=float,
        default=None,
        help="weight of the privacy terms (default 0.5, as the released weights)",
    )
    p.add_argument(
        "--alpha-util",
        type=float,
        default=None,
        help="weight of the utility terms (default 10, as the released weights)",
    )
    p.add_argument(
        "--loss-weight", action="append", metavar="NAME=VALUE", help="override a loss weight, e.g. cross=1.0"
    )
    p.add_argument(
        "--dmr", action="store_true", help="the DMR baseline: (256, 32) embeddings, no classifiers or Q"
    )
    p.add_argument(
        "--config", default=None, help="start from a Config JSON (as printed at the start of a run)"
    )
    p.add_argument("--checkpoint-dir", default="runs/pmr", help="checkpoints and curves (default runs/pmr)")
    p.add_argument("--model-id", default="pmr", help="name recorded in the checkpoint's provenance")
    p.add_argument("--resume", action="store_true", help="continue from CHECKPOINT_DIR/last.pt")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the config's)")
    p.add_argument(
        "--use-mlflow", action="store_true", help="log metrics to MLflow (needs the mlflow package)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .eval_command import evaluate_command

    return evaluate_command(args)


def cmd_train_evaluators(args: argparse.Namespace) -> int:
    from .eval_command import train_evaluators_command

    return train_evaluators_command(args)


def _add_eval_arguments(p: Any, *, evaluate_flags: bool = True) -> None:
    """Flags shared by ``pmr evaluate`` and ``pmr train-evaluators``."""
    p.add_argument(
        "--dataset", choices=("standin", "ntu60"), default="standin", help="stand-in (default) or NTU-60"
    )
    p.add_argument("--data", default=None,
                   help=f"stand-in .npz (default {DEFAULT_STANDIN_PATH}, generated when missing) or NTU-60 .skeleton directory")  # fmt: skip
    p.add_argument(
        "--genders",
        default=None,
        help="NTU-60: CSV of the performers' genders (without it: no gender column)",
    )
    p.add_argument(
        "--cache", default=None, help="NTU-60: .npz cache of the preprocessed clips (written on first use)"
    )
    p.add_argument("--protocol", choices=("cross-view", "cross-take", "both"), default=None,
                   help="split(s): cross-take (train replication 1, test replication 2 camera 1: no shared take), "
                        "cross-view (train cameras 2, 3, test camera 1: the paper's) or both (default; --quick: cross-take)")  # fmt: skip
    p.add_argument("--quick", action="store_true",
                   help="quick mode: cross-take only, 1 seed, 10 evaluator and 4 attacker epochs, 760 attacker clips, "
                        "the default anonymizer's rows only, evaluators cached apart (runs/evaluators/DATASET-quick/)")  # fmt: skip
    p.add_argument("--evaluators", default=None,
                   help="evaluator cache directory, one sub-directory per protocol (default runs/evaluators/DATASET[-quick])")  # fmt: skip
    p.add_argument(
        "--retrain-evaluators",
        action="store_true",
        help="train the evaluators even when a fresh cache exists",
    )
    p.add_argument("--sgn-size", choices=("slim", "paper"), default="slim",
                   help="slim: a CPU-sized SGN (default); paper: SGN as published (use a GPU)")  # fmt: skip
    p.add_argument("--evaluator-epochs", type=int, default=None,
                   help="epochs per fixed evaluator (default 25 slim, 60 paper, 10 --quick)")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    add_threads_argument(p)
    p.add_argument(
        "--max-test", type=int, default=None, help="evaluate on the first N test clips only (quick runs)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    if not evaluate_flags:
        return
    p.add_argument("--paper-model", default=None,
                   help="the paper-faithful PMR checkpoint (default pmr_stream/assets/pmr_paper.pt if it exists); 'none' skips")  # fmt: skip
    p.add_argument("--model-path", action="append", default=None,
                   help="another checkpoint to evaluate beside the shipped default (repeatable)")  # fmt: skip
    p.add_argument("--privacy-levels", default=None,
                   help="comma-separated privacy levels of the default anonymizer to evaluate (default: all)")  # fmt: skip
    p.add_argument(
        "--dmr-path", default=None, help="DMR checkpoint (default: the shipped dmr_standin.pt); 'none' skips"
    )
    p.add_argument(
        "--dummy", default=None, help="the constant dummy's recording (default: the shipped dummy)"
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="evaluation seeds: linkage pairs, random dummies (default 5, --quick 1)",
    )
    p.add_argument("--adaptive-epochs", type=int, default=None,
                   help="fine-tuning epochs of each adaptive attacker, warm-started from the fixed one (default 6, --quick 4)")  # fmt: skip
    p.add_argument("--adaptive-clips", type=int, default=None,
                   help="train the adaptive attackers on at most N training clips (seeded subset; default all, --quick 760)")  # fmt: skip
    p.add_argument("--no-adaptive", action="store_true", help="fixed evaluators only (no adaptive columns)")
    p.add_argument("--policies", default="constant,random,same_action",
                   help="dummy policies of the cross-view paper-layout table, comma-separated")  # fmt: skip
    p.add_argument("--no-fk", action="store_true", help="leave out the forward-kinematics baseline")
    p.add_argument("--no-stream", action="store_true", help="leave out the streaming-path row")
    p.add_argument("--stream-backend", default="auto", help="backend of the streaming row (default auto)")
    p.add_argument(
        "--stream-policy", default="last", help="window policy of the streaming row (default last)"
    )
    p.add_argument(
        "--stream-bones",
        choices=BONES,
        default="dummy",
        help="bone step of the streaming row, as the service's --bones (default dummy)",
    )
    p.add_argument(
        "--output", default=None, help="output directory (default out/eval_DATASET, out/eval_DATASET_quick)"
    )


def register(sub: Any) -> None:
    """Add the training and evaluation commands to the ``pmr`` subparsers."""
    p = sub.add_parser("train", help="train PMR (the paper's 6 sub-stages) on the stand-in or NTU-60")
    _add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    from .recipe import add_recipe_arguments

    p = sub.add_parser(
        "train-default", help="train the default anonymizer (PMR, retarget head, privacy dial); resumable"
    )
    add_recipe_arguments(p)
    p.set_defaults(func=cmd_train_default)

    p = sub.add_parser(
        "evaluate", help="the privacy/utility tables: fixed and adaptive attackers, cross-take and cross-view"
    )
    _add_eval_arguments(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "train-evaluators", help="train and cache the SGN evaluators (action, re-ID, gender, linkage)"
    )
    _add_eval_arguments(p, evaluate_flags=False)
    p.set_defaults(func=cmd_train_evaluators)
