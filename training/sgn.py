"""SGN, the Semantics-Guided Neural Network (Zhang et al., CVPR 2020), our evaluators' backbone.

A window ``(B, 75, 25, 3)`` (frames, joints, xyz; normalised metres) is cut into
``segments`` equal parts and one frame is taken from each (a random one while
training, the middle one when evaluating, as SGN does). Each joint of each kept
frame is embedded from its position and velocity, plus the semantics SGN is named for:
which joint it is (one-hot) and which segment (one-hot). Three residual graph
convolutions over a data-dependent adjacency (softmax of ``theta(x)^T phi(x)`` per
frame) mix the joints; a spatial max-pool, a temporal convolution and a temporal
max-pool give a 512-d feature per window, and a linear layer the logits.

:class:`SGNClassifier` is the action / re-identification / gender evaluator;
:class:`SiameseSGN` is the linkage attacker (two windows -> logit of "same performer").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pmr_stream.skeleton import C, J, T


@dataclass(frozen=True)
class SGNConfig:
    """Sizes of the network. ``segments``: frames kept per window (SGN's default 20)."""

    segments: int = 20
    embed: int = 64
    feature: int = 512
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if not 1 <= self.segments <= T:
            raise ValueError(f"segments must be in 1..{T}, got {self.segments}")


def sample_frames(
    frames: int, segments: int, train: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Indices ``(segments,)`` of one frame per equal segment of ``frames``: random in training, else middle."""
    edges = torch.linspace(0, frames, segments + 1)
    lo, hi = edges[:-1], edges[1:]
    if train:
        u = torch.rand(segments, generator=generator)
        pos = lo + u * (hi - lo)
    else:
        pos = (lo + hi) / 2
    return pos.floor().clamp_(0, frames - 1).long()


class _MLP(nn.Module):
    """Two linear layers with ReLU over the last axis: ``(..., c_in) -> (..., c_out)`` (SGN's 1x1 convolutions)."""

    def __init__(self, c_in: int, c_out: int, hidden: int = 64) -> None:
        super().__init__()
        self.fc1 = nn.Linear(c_in, hidden)
        self.fc2 = nn.Linear(hidden, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc2(F.relu(self.fc1(x))))


class _GraphConv(nn.Module):
    """``x' = ReLU(BN(W (G x) + W1 x))``, ``x`` ``(B, S, J, C)``, ``G`` ``(B, S, J, J)`` row-stochastic."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.w = nn.Linear(c_in, c_out, bias=False)
        self.w1 = nn.Linear(c_in, c_out)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        h = self.w(g @ x) + self.w1(x)  # (B, S, J, c_out)
        return F.relu(self.bn(h.reshape(-1, h.shape[-1])).reshape(h.shape))


class SGNBackbone(nn.Module):
    """``(B, frames, 25, 3)`` windows -> ``(B, feature)`` features (any ``frames`` >= 1).

    Computed channels-last (``(B, S, J, C)``) with linear layers, which is SGN's 1x1
    convolutions without their CPU overhead; the joint and segment embeddings depend
    only on the index, so they are computed once per call and broadcast.
    """

    def __init__(self, config: SGNConfig | None = None) -> None:
        super().__init__()
        cfg = config or SGNConfig()
        self.config = cfg
        e, s = cfg.embed, cfg.segments
        self.norm = nn.BatchNorm1d(J * C)  # per joint and axis, over batch and segments
        self.vel_norm = nn.BatchNorm1d(J * C)
        self.pos_embed = _MLP(C, e, e)
        self.vel_embed = _MLP(C, e, e)
        self.joint_embed = _MLP(J, e, e)
        self.seg_embed = _MLP(s, 4 * e, e)
        self.theta = nn.Linear(2 * e, 4 * e)
        self.phi = nn.Linear(2 * e, 4 * e)
        self.gcn1 = _GraphConv(2 * e, 2 * e)
        self.gcn2 = _GraphConv(2 * e, 4 * e)
        self.gcn3 = _GraphConv(4 * e, 4 * e)
        self.tconv = nn.Conv1d(4 * e, 4 * e, 3, padding=1)
        self.tbn = nn.BatchNorm1d(4 * e)
        self.proj = nn.Linear(4 * e, cfg.feature)
        self.pbn = nn.BatchNorm1d(cfg.feature)
        self.dropout = nn.Dropout(cfg.dropout)
        self.register_buffer("joint_onehot", torch.eye(J), persistent=False)  # (J, J)
        self.register_buffer("seg_onehot", torch.eye(s), persistent=False)  # (S, S)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for gcn in (self.gcn1, self.gcn2, self.gcn3):
            nn.init.zeros_(gcn.w.weight)  # SGN starts from the residual path

    def _normed(self, x: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
        b, s = x.shape[:2]
        y = bn(x.reshape(b, s, J * C).transpose(1, 2))  # (B, J*3, S)
        return y.transpose(1, 2).reshape(b, s, J, C)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, frames: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``frames``: the ``(S,)`` frame indices to use instead of sampling them."""
        if x.dim() != 4 or x.shape[2:] != (J, C):
            raise ValueError(f"SGN input must have shape (B, frames, {J}, {C}), got {tuple(x.shape)}")
        if frames is None:
            idx = sample_frames(x.shape[1], self.config.segments, self.training, generator).to(x.device)
        elif frames.shape != (self.config.segments,):
            raise ValueError(f"frames must have shape ({self.config.segments},), got {tuple(frames.shape)}")
        else:
            idx = frames.to(x.device)
        pos = x[:, idx]  # (B, S, J, 3)
        vel = torch.zeros_like(pos)
        vel[:, 1:] = pos[:, 1:] - pos[:, :-1]
        dyn = self.pos_embed(self._normed(pos, self.norm)) + self.vel_embed(
            self._normed(vel, self.vel_norm)
        )  # (B, S, J, e)
        joint = self.joint_embed(self.joint_onehot)  # (J, e), the same for every window and segment
        h = torch.cat([dyn, joint.expand_as(dyn)], dim=-1)  # (B, S, J, 2e)
        phi = self.phi(h).transpose(-1, -2).contiguous()  # (B, S, 4e, J): a contiguous operand keeps bmm fast
        g = torch.softmax(self.theta(h) @ phi, dim=-1)  # (B, S, J, J)
        h = self.gcn3(self.gcn2(self.gcn1(h, g), g), g)  # (B, S, J, 4e)
        h = h.amax(dim=2) + self.seg_embed(self.seg_onehot)  # (B, S, 4e): spatial max-pool, segment semantics
        h = self.dropout(F.relu(self.tbn(self.tconv(h.transpose(1, 2)))))  # (B, 4e, S)
        h = self.proj(h.transpose(1, 2))  # (B, S, feature)
        h = F.relu(self.pbn(h.transpose(1, 2)))  # (B, feature, S)
        return h.amax(dim=2)  # (B, feature): temporal max-pool


class SGNClassifier(nn.Module):
    """SGN with a linear head: ``(B, 75, 25, 3) -> logits (B, num_classes)``."""

    def __init__(self, num_classes: int, config: SGNConfig | None = None) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.num_classes = num_classes
        self.backbone = SGNBackbone(config)
        self.fc = nn.Linear(self.backbone.config.feature, num_classes)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, frames: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.fc(self.backbone(x, generator, frames))


class SiameseSGN(nn.Module):
    """Linkage attacker: two windows ``(B, 75, 25, 3)`` each -> logit ``(B,)`` of "same performer".

    One shared SGN backbone; the head reads ``[|f_a - f_b|, f_a * f_b]``, so the
    decision does not depend on the order of the pair.
    """

    def __init__(self, config: SGNConfig | None = None) -> None:
        super().__init__()
        self.backbone = SGNBackbone(config)
        f = self.backbone.config.feature
        self.head = nn.Sequential(nn.Linear(2 * f, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 1))

    def forward(
        self, a: torch.Tensor, b: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        fa = self.backbone(a, generator)
        fb = self.backbone(b, generator)
        return self.head(torch.cat([(fa - fb).abs(), fa * fb], dim=1)).squeeze(1)


__all__ = ["SGNConfig", "SGNBackbone", "SGNClassifier", "SiameseSGN", "sample_frames"]
