"""The four embedding classifiers and the quality controller Q (training-time only).

Classifiers read an embedding ``(B, C0, C1)`` and return logits ``(B, n_classes)``
(the paper's code put a softmax before CrossEntropyLoss, a double softmax; ours
return raw logits). Q reads a skeleton window and says how real it looks.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from pmr_stream.model.pmr import PMR_CHANNELS
from pmr_stream.skeleton import C, J, T


class EmbeddingClassifier(nn.Module):
    """``(B, C0, C1) -> logits (B, n_classes)``.

    Three ConvTranspose1d(k3, stride 2) blocks with BatchNorm and ReLU
    (C0 -> 128 -> 256 -> 512, length C1 -> 8*C1), adaptive average pooling,
    then FC 512 -> 1024 -> 512 -> n_classes with dropout 0.5.
    """

    def __init__(self, num_classes: int, encoded_channels: tuple[int, int] = PMR_CHANNELS) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        chans = [encoded_channels[0], 128, 256, 512]
        self.convs = nn.ModuleList(
            nn.ConvTranspose1d(a, b, 3, stride=2, padding=1, output_padding=1)
            for a, b in zip(chans[:-1], chans[1:], strict=True)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in chans[1:])
        self.fc1 = nn.Linear(512, 1024)
        self.fc2 = nn.Linear(1024, 512)
        self.fc3 = nn.Linear(512, num_classes)
        self.dropout = nn.Dropout(0.5)
        self.num_classes = num_classes
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]  # conv bias is on
            elif isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            z = F.relu(norm(conv(z)))  # (B, c, 2L)
        z = z.mean(dim=2)  # (B, 512)
        z = self.dropout(F.relu(self.fc1(z)))  # (B, 1024)
        z = self.dropout(F.relu(self.fc2(z)))  # (B, 512)
        return self.fc3(z)  # (B, n_classes) logits


class QualityController(nn.Module):
    """Q: skeleton windows ``(B, 75, 25, 3)`` (or ``(B, 75, 75)``) -> probability real ``(B, 1)``.

    Four blocks of ReflectionPad1d(3), Conv1d(k3, padding 1), LeakyReLU(0.2),
    MaxPool1d(2), channels 75 -> 64 -> 32 -> 16 -> 8 (length 75 -> 40 -> 23 -> 14 -> 10),
    then FC 80 -> 32 (ReLU) -> 1 and a sigmoid. :meth:`logits` gives the value
    before the sigmoid (use it with ``BCEWithLogitsLoss``).
    """

    def __init__(self, frames: int = T) -> None:
        super().__init__()
        chans = [frames, 64, 32, 16, 8]
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:], strict=True)
        )
        self.pad = nn.ReflectionPad1d(3)
        self.fc1 = nn.Linear(8 * 10, 32)
        self.fc2 = nn.Linear(32, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu", a=0.2)
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]  # conv bias is on
            elif isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], T, J * C)  # (B, 75, 75)
        for conv in self.convs:
            x = F.max_pool1d(F.leaky_relu(conv(self.pad(x)), 0.2), 2)  # (B, c, L')
        x = F.relu(self.fc1(x.flatten(1)))  # (B, 32)
        return self.fc2(x)  # (B, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class Adversaries(nn.Module):
    """The four embedding classifiers and Q, grouped for one optimiser.

    ``priv_adv`` reads E_M (must fail to find the performer), ``priv_coop`` reads
    E_P (must find it), ``util_adv`` reads E_P (must fail to find the action),
    ``util_coop`` reads E_M (must find it).
    """

    def __init__(
        self, num_performers: int, num_actions: int, encoded_channels: tuple[int, int] = PMR_CHANNELS
    ) -> None:
        super().__init__()
        self.priv_adv = EmbeddingClassifier(num_performers, encoded_channels)
        self.priv_coop = EmbeddingClassifier(num_performers, encoded_channels)
        self.util_adv = EmbeddingClassifier(num_actions, encoded_channels)
        self.util_coop = EmbeddingClassifier(num_actions, encoded_channels)
        self.quality = QualityController()
