"""Checkpoints that carry their config and provenance, loaded without pickle.

A checkpoint is a ``torch.save`` of a plain dict of tensors and strings:
``format``, ``version``, ``config_json`` (the :class:`~pmr_stream.config.Config`
tree), ``provenance_json`` (dataset, seed, stages, commit, metrics, ...),
``model`` (the retargeting network's state dict) and, in training checkpoints,
``adversaries`` and ``training_state``. Loading uses ``torch.load(weights_only=True)``,
which refuses arbitrary Python objects.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pmr_stream.config import Config
from pmr_stream.model.pmr import PMRModel

log = logging.getLogger(__name__)

FORMAT = "pmr-stream-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: names the file and what is wrong."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds (state dicts are tensors only)."""

    config: Config
    model_state: dict[str, torch.Tensor]
    provenance: dict[str, Any] = field(default_factory=dict)
    adversaries_state: dict[str, torch.Tensor] | None = None
    training_state: dict[str, Any] | None = None

    def build_model(self, path: str | os.PathLike[str] = "<memory>") -> PMRModel:
        """A :class:`PMRModel` of the checkpoint's shape with its weights, in eval mode."""
        model = PMRModel(
            T=self.config.model.T,
            encoded_channels=self.config.model.encoded_channels,
            head=self.config.model.head,
        )
        _load_state(model, self.model_state, path)
        return model.eval()


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str:
    """The current git commit of the project (``"unknown"`` outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd or Path(__file__).resolve().parents[2],
            capture_output=True, text=True, timeout=5, check=True,
        )  # fmt: skip
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` atomically (temp file then rename) and return its path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config_json": ckpt.config.to_json(),
        "provenance_json": json.dumps(ckpt.provenance, sort_keys=True, default=str),
        "model": {k: v.detach().cpu() for k, v in ckpt.model_state.items()},
    }
    if ckpt.adversaries_state is not None:
        payload["adversaries"] = {k: v.detach().cpu() for k, v in ckpt.adversaries_state.items()}
    if ckpt.training_state is not None:
        payload["training_state"] = ckpt.training_state
    tmp = p.with_name(p.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, p)
    return p


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> Checkpoint:
    """Read a checkpoint with ``weights_only=True``; errors name the file and the problem."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        raise CheckpointError(
            f"{p}: not a loadable pmr-stream checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a pmr-stream checkpoint (missing format tag {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{p}: checkpoint version {payload.get('version')} is not supported (expected {VERSION})"
        )
    for key in ("config_json", "provenance_json", "model"):
        if key not in payload:
            raise CheckpointError(f"{p}: checkpoint lacks {key!r}")
    try:
        config = Config.from_json(payload["config_json"])
    except ValueError as exc:
        raise CheckpointError(f"{p}: its config is invalid: {exc}") from exc
    return Checkpoint(
        config=config,
        model_state=payload["model"],
        provenance=json.loads(payload["provenance_json"]),
        adversaries_state=payload.get("adversaries"),
        training_state=payload.get("training_state"),
    )


def _load_state(
    module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike[str]
) -> None:
    """Load ``state`` into ``module``, refusing any missing, extra or mis-shaped tensor by name."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]  # fmt: skip
    if missing or extra or wrong:
        parts = []
        if wrong:
            parts.append("shape mismatch: " + "; ".join(wrong[:4]) + (" ..." if len(wrong) > 4 else ""))
        if missing:
            parts.append(f"missing tensors: {missing[:4]}")
        if extra:
            parts.append(f"unexpected tensors: {extra[:4]}")
        raise CheckpointError(f"{path}: checkpoint does not fit this network ({'; '.join(parts)})")
    module.load_state_dict(state)


def load_model(path: str | os.PathLike[str], map_location: str = "cpu") -> tuple[PMRModel, Checkpoint]:
    """The network stored in a checkpoint (eval mode) and the checkpoint itself."""
    ckpt = load_checkpoint(path, map_location)
    return ckpt.build_model(path), ckpt
