"""One dataclass tree for the model, data, training and evaluation; paper values as defaults.

    config = Config()
    config.training.batch_size = 64
    config.training.loss.alpha_priv = 1.5

The tree is saved (as JSON) in every checkpoint and printed at the start of every
run. :meth:`Config.from_dict` checks every key and type, so a stale or misspelt
field is refused with a message naming it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from pmr_stream.skeleton import CROSS_VIEW_TEST_CAMERAS, CROSS_VIEW_TRAIN_CAMERAS
from pmr_stream.skeleton import T as WINDOW


@dataclass
class ModelSection:
    """The retargeting network's shape. PMR uses (128, 16); the DMR baseline (256, 32)."""

    T: int = WINDOW
    encoded_channels: tuple[int, int] = (128, 16)
    #: what the decoder outputs: "direct" (the paper: the anonymized window itself) or
    #: "retarget" (a residual on bone directions around the identity-normalising FK
    #: retarget of :mod:`pmr_stream.model.retarget`; the default anonymizer, with a privacy dial)
    head: Literal["direct", "retarget"] = "direct"


@dataclass
class DataSection:
    """Which dataset and how clips become 75-frame windows."""

    dataset: Literal["standin", "ntu60"] = "standin"
    path: str = ""
    #: training crop: one random 75-frame window (the paper); evaluation uses the centre
    crop: Literal["random", "centre"] = "random"
    #: NTU-style cross-view split: train cameras 2 and 3, test camera 1
    train_cameras: tuple[int, ...] = CROSS_VIEW_TRAIN_CAMERAS
    test_cameras: tuple[int, ...] = CROSS_VIEW_TEST_CAMERAS
    #: fraction of the training clips held out for validation (best-checkpoint choice)
    val_fraction: float = 0.1
    paired_samples_per_epoch: int = 2000


@dataclass
class LossWeights:
    """Loss weights (../shared/docs/PMR_FACTS.md). ``alpha_priv``/``alpha_util`` scale the
    adversarial/cooperative classifier terms (the released weights appear to use 0.5 and 10)."""

    reconstruction: float = 2.0
    cross: float = 0.1
    end_effector: float = 1.0
    smoothness: float = 3.0
    triplet: float = 1.0
    triplet_margin: float = 1.0
    latent: float = 10.0
    quality: float = 1.0
    alpha_priv: float = 0.5
    alpha_util: float = 10.0


@dataclass
class StageSection:
    """One sub-stage of the schedule."""

    name: str
    epochs: int
    paired: bool
    #: which parts learn: "ae" (encoders+decoder), "adv" (classifiers and Q), "both"
    trains: Literal["ae", "adv", "both"]
    #: classifier/Q updates per batch (stages that train the adversaries)
    adv_updates: int = 1
    #: autoencoder losses include the classifier and Q terms
    adversarial_terms: bool = False


def paper_schedule() -> list[StageSection]:
    """The paper's six sub-stages (its README groups them as 4 stages)."""
    return [
        StageSection("1-paired-ae", 5, paired=True, trains="ae"),
        StageSection("2-unpaired-ae", 20, paired=False, trains="ae"),
        StageSection("3-paired-adv", 20, paired=True, trains="adv"),
        StageSection("4-unpaired-adv", 50, paired=False, trains="adv", adv_updates=3),
        StageSection(
            "5-unpaired-both", 100, paired=False, trains="both", adv_updates=3, adversarial_terms=True
        ),
        StageSection("6-paired-both", 100, paired=True, trains="both", adv_updates=1, adversarial_terms=True),
    ]


@dataclass
class TrainingSection:
    """Optimisation: AdamW, batch 32, lr 1e-5, no scheduler (the paper's final code)."""

    batch_size: int = 32
    lr: float = 1e-5
    adv_lr: float = 1e-5
    weight_decay: float = 1e-2
    #: multiplies every stage's epochs (at least 1 each, see :meth:`stage_epochs`); below 1 it
    #: also shortens every epoch (:meth:`epoch_samples`); 1.0 is the recipe as published
    epochs_scale: float = 1.0
    seed: int = 0
    device: str = "cpu"
    loss: LossWeights = field(default_factory=LossWeights)
    stages: list[StageSection] = field(default_factory=paper_schedule)
    #: no adversarial classifiers or Q at all (the DMR baseline)
    use_adversaries: bool = True

    def stage_epochs(self, stage: StageSection) -> int:
        """Epochs a stage runs after ``epochs_scale`` (at least 1 unless the stage has 0)."""
        if stage.epochs == 0:
            return 0
        return max(1, round(stage.epochs * self.epochs_scale))

    def epoch_samples(self, n: int) -> int:
        """Samples one epoch draws out of ``n`` (training windows, paired quadruplets per epoch
        or validation pairs) after ``epochs_scale``.

        At ``epochs_scale >= 1`` an epoch is the recipe's: all ``n``. Below 1 (a quick run) an
        epoch shrinks too, to ``round(n * epochs_scale)`` samples but at least one batch
        (``min(n, batch_size)``): the epochs of short stages are rounded up to one
        (:meth:`stage_epochs`), and without this a paired epoch of 2000 quadruplets would stay
        whole, however small the set and the scale.
        """
        if self.epochs_scale >= 1 or n <= 0:
            return n
        return max(min(n, self.batch_size), round(n * self.epochs_scale))


@dataclass
class EvaluationSection:
    """Evaluation protocol."""

    seeds: int = 5
    dummy_policy: Literal["constant", "random", "same_action"] = "same_action"


@dataclass
class Config:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        return _build(cls, data, "config")

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls.from_dict(json.loads(text))


D = TypeVar("D")


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
        return _build(tp, value, where)
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError(f"{where}: {value!r} is not one of {get_args(tp)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        args = get_args(tp)
        item = args[0]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(
            _convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        return [_convert(get_args(tp)[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: type[D], data: dict[str, Any], where: str) -> D:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


__all__ = [
    "Config", "ModelSection", "DataSection", "LossWeights", "StageSection", "TrainingSection",
    "EvaluationSection", "paper_schedule",
]  # fmt: skip
