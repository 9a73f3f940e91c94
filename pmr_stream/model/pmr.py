"""The PMR retargeting network: motion encoder E_M, privacy encoder E_P, decoder D.

One definition, shared by training, export and the runtime. Shapes follow the
paper (../shared/docs/PMR_FACTS.md): a window is ``(B, 75, 25, 3)`` (frames, joints, xyz) of
normalised coordinates (metres, SpineMid of the first frame at the origin).
Both encoders treat the 75 frames as channels over the 25x3 joint grid and
return an embedding ``(B, C0, C1)``; the decoder takes both embeddings
concatenated on channels and returns ``(B, 75, 25, 3)``.

Anonymisation is cross reconstruction: ``D(E_M(original), E_P(dummy))`` keeps
the original's motion and takes the dummy's body. For streaming, the dummy's
privacy code is computed once (:meth:`PMRModel.privacy_code`) and each window
needs only E_M and D (:meth:`PMRModel.anonymize_with_code`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional as F

from pmr_stream.model.privacy_dial import DEFAULT_PRIVACY, DIAL, check_privacy
from pmr_stream.model.retarget import Retarget
from pmr_stream.skeleton import C, J, T

#: What the decoder outputs (see :class:`pmr_stream.config.ModelSection`).
HEADS: Final[tuple[str, ...]] = ("direct", "retarget")

#: Embedding sizes (C0, C1) of the paper's PMR and of the DMR baseline.
PMR_CHANNELS: tuple[int, int] = (128, 16)
DMR_CHANNELS: tuple[int, int] = (256, 32)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the retargeting network. ``encoded_channels`` = (C0, C1)."""

    T: int = T
    encoded_channels: tuple[int, int] = PMR_CHANNELS
    head: str = "direct"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.T != T:
            raise ValueError(f"the network is built for T={T} frames, got T={self.T}")
        c0, c1 = self.encoded_channels
        if c0 <= 0 or c1 <= 0:
            raise ValueError(f"encoded_channels must be positive, got {self.encoded_channels}")


def _init(module: nn.Module) -> None:
    """Kaiming-normal (fan-out) for convolutions, Xavier-normal for linears, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu", a=0.2)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)


class Encoder(nn.Module):
    """E_M or E_P: ``(B, 75, 25, 3) -> (B, C0, C1)``.

    Four blocks of ReflectionPad2d(1), Conv2d(k3, padding 1), LeakyReLU(0.2),
    MaxPool2d(2) over the 25x3 grid (channels 75 -> 12 -> 24 -> 32 -> C0; the grid
    shrinks 25x3 -> 13x2 -> 7x2 -> 4x2 -> 3x2), global average pooling, then
    Linear(C0, C0*C1) reshaped to the embedding.
    """

    def __init__(self, encoded_channels: tuple[int, int] = PMR_CHANNELS, frames: int = T) -> None:
        super().__init__()
        self.encoded_channels = encoded_channels
        c0, c1 = encoded_channels
        chans = [frames, 12, 24, 32, c0]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, kernel_size=3, padding=1) for a, b in zip(chans[:-1], chans[1:], strict=True)
        )
        self.pad = nn.ReflectionPad2d(1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(c0, c0 * c1)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = self.pool(F.leaky_relu(conv(self.pad(x)), 0.2))  # (B, c, H', W')
        x = x.mean(dim=(2, 3))  # (B, C0) global average pooling
        return self.fc(x).view(x.shape[0], *self.encoded_channels)  # (B, C0, C1)


class Decoder(nn.Module):
    """D: ``(B, 2*C0, C1) -> (B, 75, 75)`` (frames, 25 joints x xyz).

    Four blocks of ReflectionPad1d(3), ConvTranspose1d(k3, padding 1),
    LeakyReLU(0.2), then nearest upsampling: x2 after the first three blocks and
    a resize to 75 after the last. Channels 2*C0 -> 256 -> 128 -> 96 -> 75.
    """

    def __init__(self, encoded_channels: tuple[int, int] = PMR_CHANNELS, frames: int = T) -> None:
        super().__init__()
        chans = [2 * encoded_channels[0], 256, 128, 96, frames]
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose1d(a, b, kernel_size=3, padding=1)
            for a, b in zip(chans[:-1], chans[1:], strict=True)
        )
        self.pad = nn.ReflectionPad1d(3)
        self.out_len = J * C
        _init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = len(self.deconvs)
        for i, deconv in enumerate(self.deconvs):
            z = F.leaky_relu(deconv(self.pad(z)), 0.2)  # (B, c, L + 6)
            if i < n - 1:
                z = F.interpolate(z, scale_factor=2.0, mode="nearest")  # (B, c, 2L)
        return F.interpolate(z, size=self.out_len, mode="nearest")  # (B, 75, 75)


class PMRModel(nn.Module):
    """The retargeting network (E_M + E_P + D) with the paper's Python API.

    >>> model = PMRModel(T=75, encoded_channels=(128, 16))
    >>> anonymized = model.cross_reconstruct(original, dummy)  # (B, 75, 25, 3) each
    """

    def __init__(
        self, T: int = T, encoded_channels: tuple[int, int] = PMR_CHANNELS, head: str = "direct"
    ) -> None:  # noqa: N803
        super().__init__()
        self.config = ModelConfig(T=T, encoded_channels=tuple(encoded_channels), head=head)  # type: ignore[arg-type]
        self.motion_encoder = Encoder(self.config.encoded_channels, T)
        self.privacy_encoder = Encoder(self.config.encoded_channels, T)
        self.decoder = Decoder(self.config.encoded_channels, T)
        #: the "retarget" head's identity-normalising FK (buffers: the dummy it is specialised for)
        self.retarget: Retarget | None = None
        if head == "retarget":
            self.retarget = Retarget(
                torch.full((J - 1,), 0.1), torch.tensor([[0.0, 1.0, 0.0]]).repeat(J - 1, 1)
            )

    @property
    def has_dial(self) -> bool:
        """Whether the model has a privacy dial (the "retarget" head)."""
        return self.retarget is not None

    def set_dummy(self, dummy: npt.ArrayLike) -> None:
        """ "retarget" head: specialise the FK step for a dummy window ``(T, 25, 3)`` metres
        (its bone lengths and rest directions become buffers, saved with the weights)."""
        if self.retarget is None:
            raise ValueError("set_dummy: only a model with the 'retarget' head holds a dummy")
        new = Retarget.from_dummy(dummy).to(self.retarget.bones.device)
        self.retarget.bones.copy_(new.bones)
        self.retarget.rest.copy_(new.rest)

    def resolve_privacy(self, privacy: str | None) -> str | None:
        """The level to run: ``None`` means the model's default; a model without a dial refuses a level."""
        if self.retarget is None:
            if privacy is not None:
                raise ValueError(
                    f"this model ({self.config.head} head) has no privacy dial; got privacy={privacy!r}"
                )
            return None
        return check_privacy(privacy if privacy is not None else DEFAULT_PRIVACY, "privacy")

    def finish(
        self, windows: torch.Tensor, decoded: torch.Tensor, privacy: str | None = None
    ) -> torch.Tensor:
        """The decoder's output ``(B, 75, 25, 3)`` -> the anonymized windows: itself ("direct"
        head) or the dial's retarget of ``windows`` with it as residual ("retarget" head)."""
        level = self.resolve_privacy(privacy)
        if self.retarget is None or level is None:
            return decoded
        return self.retarget(windows, decoded, DIAL[level])

    @staticmethod
    def _check(x: torch.Tensor, name: str) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != (T, J, C):
            raise ValueError(f"{name} must have shape (B, {T}, {J}, {C}), got {tuple(x.shape)}")

    def get_embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, 75, 25, 3) -> (motion (B, C0, C1), privacy (B, C0, C1))``."""
        self._check(x, "x")
        return self.motion_encoder(x), self.privacy_encoder(x)

    def decode(self, motion: torch.Tensor, privacy: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, C0, C1)`` each -> skeletons ``(B, 75, 25, 3)``."""
        if privacy.shape[0] == 1 and motion.shape[0] > 1:
            privacy = privacy.expand(motion.shape[0], -1, -1)
        out = self.decoder(torch.cat([motion, privacy], dim=1))  # (B, 75, 75)
        return out.view(out.shape[0], T, J, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``D(E_M(x), E_P(x))``: ``(B, 75, 25, 3) -> (B, 75, 25, 3)``."""
        motion, privacy = self.get_embeddings(x)
        return self.decode(motion, privacy)

    def cross_reconstruct(
        self, original: torch.Tensor, dummy: torch.Tensor, privacy: str | None = None
    ) -> torch.Tensor:
        """``D(E_M(original), E_P(dummy))``: the original's motion on the dummy's body.

        ``original`` ``(B, 75, 25, 3)``; ``dummy`` ``(B, 75, 25, 3)`` or ``(1, 75, 25, 3)``
        (one dummy for the whole batch).
        """
        self._check(original, "original")
        self._check(dummy, "dummy")
        return self.finish(
            original, self.decode(self.motion_encoder(original), self.privacy_encoder(dummy)), privacy
        )

    def privacy_code(self, dummy: torch.Tensor) -> torch.Tensor:
        """E_P of the dummy, ``(1, 75, 25, 3) -> (1, C0, C1)``: computed once for streaming."""
        self._check(dummy, "dummy")
        return self.privacy_encoder(dummy)

    def anonymize_with_code(
        self, windows: torch.Tensor, code: torch.Tensor, privacy: str | None = None
    ) -> torch.Tensor:
        """Streaming graph ``D(E_M(windows), code)``: ``(B, 75, 25, 3)`` with ``code (1, C0, C1)``;
        the "retarget" head then applies the dial's retarget at level ``privacy``."""
        self._check(windows, "windows")
        return self.finish(windows, self.decode(self.motion_encoder(windows), code), privacy)


class AnonymizerGraph(nn.Module):
    """The graph the engines compile: windows ``(B, 75, 25, 3)`` -> anonymized ``(B, 75, 25, 3)``.

    The dummy's privacy code is a constant buffer (baked into exported graphs); so is the
    privacy level of a model with a dial (``privacy``; ``None``: the model's default).
    """

    code: torch.Tensor

    def __init__(self, model: PMRModel, code: torch.Tensor, privacy: str | None = None) -> None:
        super().__init__()
        self.motion_encoder = model.motion_encoder
        self.decoder = model.decoder
        self.register_buffer("code", code.detach().clone())
        self.privacy = model.resolve_privacy(privacy)
        self.finisher = RetargetFinish(model.retarget, self.privacy) if model.retarget is not None else None

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        motion = self.motion_encoder(windows)  # (B, C0, C1)
        code = self.code.expand(windows.shape[0], -1, -1)  # (B, C0, C1)
        out = self.decoder(torch.cat([motion, code], dim=1))  # (B, 75, 75)
        out = out.view(windows.shape[0], T, J, C)
        return out if self.finisher is None else self.finisher(windows, out)


class RetargetFinish(nn.Module):
    """The "retarget" head's last step at one fixed level: ``(windows, decoded) -> anonymized``."""

    def __init__(self, retarget: Retarget, privacy: str | None) -> None:
        super().__init__()
        self.retarget = retarget
        self.setting = DIAL[check_privacy(privacy or DEFAULT_PRIVACY, "privacy")]

    def forward(self, windows: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
        return self.retarget(windows, decoded, self.setting)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
