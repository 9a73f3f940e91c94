"""Torch datasets over a :class:`~training.data.ClipSet`: fixed-length windows and the paper's quadruplets.

:class:`SkeletonDataset` brings clips to 75 frames (shorter ones padded by repeating the
last frame, longer ones cropped: one random window in training, the centre window or every
window in evaluation); :class:`PairedDataset` yields the paper's quadruplets. Clips come
from :func:`training.data.load_clips`, already normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from pmr_stream.skeleton import T, crop_clip, pad_to_length, window_starts

from .data import Array32, ClipSet, Crop, DataConfig, load_clips


def _labels(clipset: ClipSet, i: int) -> dict[str, torch.Tensor]:
    return {
        "action": torch.tensor(int(clipset.action[i])),
        "performer": torch.tensor(int(clipset.performer[i])),
        "gender": torch.tensor(int(clipset.gender[i])),
        "camera": torch.tensor(int(clipset.camera[i])),
    }


class SkeletonDataset(Dataset[dict[str, torch.Tensor]]):
    """Fixed-length windows of a :class:`ClipSet`.

    Items are dicts: ``"x"`` ``(75, 25, 3)`` float32 tensor (metres, normalised),
    ``"action"``, ``"performer"``, ``"gender"``, ``"camera"`` (int64 scalars) and
    ``"index"`` (the clip's index in the set).

    ``crop``: ``"random"`` one random window per clip and epoch (deterministic
    in ``seed``, the epoch set by :meth:`set_epoch` and the index);
    ``"centre"`` the middle window; ``"all"`` every window ``stride`` frames
    apart (each one an item). Clips shorter than 75 frames are padded by
    repeating their last frame.
    """

    def __init__(
        self, clipset: ClipSet, crop: Crop = "random", seed: int = 0, *, stride: int | None = None
    ) -> None:
        if crop not in ("random", "centre", "all"):
            raise ValueError(f"crop must be 'random', 'centre' or 'all', got {crop!r}")
        self.clipset = clipset
        self.crop = crop
        self.seed = seed
        self.epoch = 0
        self.windows: list[tuple[int, int]] = []
        if crop == "all":
            for i, c in enumerate(clipset.clips):
                self.windows += [(i, s) for s in window_starts(max(len(c), T), T, stride)]

    def set_epoch(self, epoch: int) -> None:
        """Choose a new set of random crops (call once per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.windows) if self.crop == "all" else len(self.clipset)

    def window(self, item: int) -> tuple[int, Array32]:
        """``(clip index, (75, 25, 3) float32 window)`` of an item."""
        if self.crop == "all":
            i, s = self.windows[item]
            return i, pad_to_length(self.clipset.clips[i])[s : s + T]
        clip = self.clipset.clips[item]
        if self.crop == "centre":
            return item, crop_clip(clip, "centre")
        rng = np.random.default_rng([self.seed, self.epoch, item])
        return item, crop_clip(clip, "random", rng=rng)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        i, x = self.window(item)
        out = {"x": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))}  # (75, 25, 3)
        out.update(_labels(self.clipset, i))
        out["index"] = torch.tensor(i)
        return out


@dataclass(frozen=True)
class Quadruplet:
    """Clip indices of one paired sample (see :class:`PairedDataset`)."""

    x1: int
    x2: int
    y1: int
    y2: int


class PairedDataset(Dataset[dict[str, torch.Tensor]]):
    """The paper's paired quadruplets.

    Two performers ``P1 != P2`` and two actions ``A1 != A2``, all four clips from
    the same camera::

        x1 = (P1, A1)    x2 = (P2, A2)    y1 = (P1, A2)    y2 = (P2, A1)

    The cross reconstruction ``D(E_M(x1), E_P(x2))`` shows action ``A1``
    performed by ``P2``, so its target is ``y2`` (and ``D(E_M(x2), E_P(x1))``'s
    is ``y1``). The paper's code compared it with ``y1``: a bug we do not
    repeat (see ``../shared/docs/PMR_FACTS.md``).

    Items: ``"x1"``, ``"x2"``, ``"y1"``, ``"y2"`` ``(75, 25, 3)`` float32 tensors,
    ``"performer1"``, ``"performer2"``, ``"action1"``, ``"action2"``,
    ``"gender1"``, ``"gender2"``, ``"camera"`` int64 scalars. ``length`` items
    per epoch (default: one per clip); item ``k`` is drawn deterministically
    from ``seed``, the epoch (:meth:`set_epoch`) and ``k``. When a (performer,
    action, camera) has several clips (replications), one is picked at random.
    """

    def __init__(
        self, clipset: ClipSet, crop: Crop = "random", seed: int = 0, *, length: int | None = None
    ) -> None:
        if crop not in ("random", "centre"):
            raise ValueError(f"crop must be 'random' or 'centre' for pairs, got {crop!r}")
        self.clipset = clipset
        self.crop = crop
        self.seed = seed
        self.epoch = 0
        self.length = len(clipset) if length is None else int(length)
        self.by_key: dict[tuple[int, int, int], list[int]] = {}
        self._actions_of: dict[tuple[int, int], set[int]] = {}  # (camera, performer) -> actions
        self._performers_of: dict[tuple[int, int], set[int]] = {}  # (camera, action) -> performers
        for i, (p, a, c) in enumerate(
            zip(clipset.performer.tolist(), clipset.action.tolist(), clipset.camera.tolist(), strict=True)
        ):
            self.by_key.setdefault((p, a, c), []).append(i)
            self._actions_of.setdefault((c, p), set()).add(a)
            self._performers_of.setdefault((c, a), set()).add(p)
        self._anchors = [i for i in range(len(clipset)) if self._partners(i)]
        if not self._anchors:
            raise ValueError(
                "no quadruplet possible: need two performers who both did two actions in the same camera"
            )

    def _partners(self, i: int) -> dict[int, list[int]]:
        """``{P2: [A2, ...]}`` completing a quadruplet with clip ``i`` as ``x1``:
        ``P2`` did ``A1`` and ``A2``, ``P1`` did ``A2``, all in ``x1``'s camera."""
        p1, a1, c = int(self.clipset.performer[i]), int(self.clipset.action[i]), int(self.clipset.camera[i])
        acts = self._actions_of.get((c, p1), set()) - {a1}
        out = {}
        for p2 in sorted(self._performers_of.get((c, a1), set()) - {p1}):
            common = sorted(acts & self._actions_of[(c, p2)])
            if common:
                out[p2] = common
        return out

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def quadruplet(self, item: int) -> Quadruplet:
        """The clip indices of item ``item``."""
        rng = np.random.default_rng([self.seed, self.epoch, item, 0x9A1])
        x1 = self._anchors[int(rng.integers(len(self._anchors)))]
        p1, a1, c = (
            int(self.clipset.performer[x1]),
            int(self.clipset.action[x1]),
            int(self.clipset.camera[x1]),
        )
        partners = self._partners(x1)
        p2 = sorted(partners)[int(rng.integers(len(partners)))]
        a2 = partners[p2][int(rng.integers(len(partners[p2])))]

        def pick(p: int, a: int) -> int:
            options = self.by_key[(p, a, c)]
            return options[int(rng.integers(len(options)))]

        return Quadruplet(x1=x1, x2=pick(p2, a2), y1=pick(p1, a2), y2=pick(p2, a1))

    def _window(self, i: int, rng: np.random.Generator) -> torch.Tensor:
        clip = self.clipset.clips[i]
        x = crop_clip(clip, "random", rng=rng) if self.crop == "random" else crop_clip(clip, "centre")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # (75, 25, 3)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        q = self.quadruplet(item)
        rng = np.random.default_rng([self.seed, self.epoch, item, 0xC40])
        cs = self.clipset
        out = {name: self._window(getattr(q, name), rng) for name in ("x1", "x2", "y1", "y2")}
        out.update({
            "performer1": torch.tensor(int(cs.performer[q.x1])), "performer2": torch.tensor(int(cs.performer[q.x2])),
            "action1": torch.tensor(int(cs.action[q.x1])), "action2": torch.tensor(int(cs.action[q.x2])),
            "gender1": torch.tensor(int(cs.gender[q.x1])), "gender2": torch.tensor(int(cs.gender[q.x2])),
            "camera": torch.tensor(int(cs.camera[q.x1])),
        })  # fmt: skip
        return out


def make_dataset(config: DataConfig) -> SkeletonDataset:
    """``SkeletonDataset(load_clips(config), config.crop, config.seed)``."""
    return SkeletonDataset(load_clips(config), config.crop, config.seed, stride=config.stride)


__all__: Sequence[str] = ["SkeletonDataset", "PairedDataset", "Quadruplet", "make_dataset"]
