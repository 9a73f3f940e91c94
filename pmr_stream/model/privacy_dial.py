"""The privacy dial: named operating points of the default anonymizer.

A model with a dial (``PMRModel.has_dial``) computes ``anonymized = R(x; level)``: the
forward-kinematics retarget of the window onto the dummy's bones, with the person's
identifying posture and motion cues taken out as far as the level says, plus the
network's learned residual (see :mod:`pmr_stream.model.retarget`). The levels run from
near-FK fidelity to the strongest privacy; every one is a point on the evaluation's chart.

Paper-style checkpoints (``D(E_M(x), E_P(dummy))`` only) have no dial: asking them for a
level is an error, ``None`` means "the model's own behaviour" everywhere.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final

#: The operating points, from most faithful to most private.
PRIVACY_LEVELS: Final[tuple[str, ...]] = ("fidelity", "balanced", "strong")
#: What ``pmr anonymize`` and the service publish unless told otherwise.
DEFAULT_PRIVACY: Final[str] = "balanced"


@dataclass(frozen=True)
class DialSetting:
    """What one level does (all dimensionless).

    ``posture``: how far each quiet bone's mean direction is turned to the dummy's
    rest direction (0 = kept, 1 = the dummy's); ``quiet``: circular variance below
    which a bone counts as quiet (its weight is ``exp(-variance / quiet)``);
    ``motion``: gain on the motion around the window mean of the active bones
    (1 = kept); ``residual``: gain on the network's learned residual (0 = none);
    ``root_scale``: the root's path scaled by the dummy's leg length over the person's.
    """

    posture: float
    quiet: float
    motion: float
    residual: float
    root_scale: bool = True


#: The settings behind each level (the model card gives each level's measured figures).
DIAL: Final[dict[str, DialSetting]] = {
    "fidelity": DialSetting(posture=0.0, quiet=0.02, motion=1.0, residual=0.0, root_scale=False),
    "balanced": DialSetting(posture=1.0, quiet=0.02, motion=1.0, residual=1.0),
    "strong": DialSetting(posture=1.0, quiet=0.05, motion=1.0, residual=1.5),
}


def check_privacy(level: str, what: str = "--privacy") -> str:
    """``level`` if it names a level, else a one-line :class:`ValueError` naming ``what``."""
    if level not in PRIVACY_LEVELS:
        raise ValueError(
            f"{what}: unknown privacy level {level!r}; choose one of {', '.join(PRIVACY_LEVELS)}"
        )
    return level


def privacy_help() -> str:
    """Help text for a ``--privacy`` option."""
    return (f"privacy dial of the default anonymizer: {', '.join(PRIVACY_LEVELS)} (most faithful to most "
            f"private; default: {DEFAULT_PRIVACY}); models without a dial refuse it")  # fmt: skip


def add_privacy_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "") -> None:
    """The one ``--privacy LEVEL`` option of every command that anonymizes (``pmr anonymize``,
    ``anonymizer``, ``stream``, ``export``, ``bench``, ``tools/bench_gpu.py``): a level of the
    dial (:data:`PRIVACY_LEVELS`), default ``None`` = the model's own default. It becomes
    :attr:`pmr_stream.backends.base.BackendOptions.privacy`; a model without a dial refuses any
    level. ``what`` prefixes the help (e.g. ``"anonymizer: "``)."""
    parser.add_argument("--privacy", default=None, choices=PRIVACY_LEVELS, metavar="LEVEL",
                        help=f"{what}privacy dial level: %(choices)s (most faithful to most private; default: the "
                             "model's own default); a model without a dial refuses a level")  # fmt: skip


__all__ = [
    "add_privacy_argument",
    "DEFAULT_PRIVACY",
    "DIAL",
    "DialSetting",
    "PRIVACY_LEVELS",
    "check_privacy",
    "privacy_help",
]
