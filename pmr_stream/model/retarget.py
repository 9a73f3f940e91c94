"""The identity-normalising retarget around which the default anonymizer's network works.

Everything here is differentiable torch with plain ONNX operators (no atan2, no
``linalg``), so it is part of the engine graph like the rest of the network.

A window ``x`` ``(B, 75, 25, 3)`` (normalised metres, SpineMid of the first frame at the
origin) becomes the person's motion on the dummy's body:

1. **View alignment**: a rotation about the vertical axis makes the window face the camera
   (hips and shoulders of the window mean along +x, as :func:`pmr_stream.skeleton.view_rotation`).
2. **Bone directions** ``u`` ``(B, 75, 24, 3)`` (unit vectors parent -> child).
3. **Posture**: for each bone, its mean direction over the window ``m`` and circular variance
   ``v = 1 - |mean u|``; a quiet bone (small ``v``: it holds a posture, not an action) has its
   mean turned towards the dummy's rest direction by weight ``posture * exp(-v / quiet)``; the
   whole bone's motion turns with it (one rotation per bone and window), so its timing and path
   around the mean are kept. Active bones keep their mean: it belongs to the action.
4. **Residual**: the network's output adds ``residual *`` a learned correction to every bone
   direction (the network sees the original window, as E_M always did).
5. **Forward kinematics** from the window's own root (SpineBase) path (``root_scale``: its
   displacement scaled by the dummy's leg length over the person's) with the dummy's bone
   lengths; the result is put back in the window convention (SpineMid of the first frame at
   the origin: keeping the original root would carry the person's SpineBase-SpineMid length
   into every frame, which a retrained attacker reads), then the view rotation is undone.

With ``posture = 0``, ``root_scale`` off and ``residual = 0`` the result is the FK baseline
(each bone's direction kept, every length the dummy's) moved by one constant offset per window.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from pmr_stream.model.privacy_dial import DialSetting
from pmr_stream.skeleton import NTU25, Joint, center_windows, view_rotation

_EPS = 1e-8
CHILD: tuple[int, ...] = tuple(c for c, _ in NTU25.bones)
PARENT: tuple[int, ...] = tuple(p for _, p in NTU25.bones)
ROOT: int = NTU25.parents.index(-1)
#: the leg bones (thighs and shins) whose length scales the root's path
LEG_BONES: tuple[int, ...] = tuple(b for b, c in enumerate(CHILD) if c in (13, 14, 17, 18))
LEG_CHILD: tuple[int, ...] = tuple(CHILD[b] for b in LEG_BONES)
LEG_PARENT: tuple[int, ...] = tuple(PARENT[b] for b in LEG_BONES)


def bone_paths() -> torch.Tensor:
    """``(25, 24)`` float: 1 where bone b lies on the path root -> joint j (FK as one matmul)."""
    paths = torch.zeros(len(NTU25.parents), len(NTU25.bones))
    for b, (c, p) in enumerate(NTU25.bones):  # parents come first
        paths[c] = paths[p]
        paths[c, b] = 1.0
    return paths


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.sqrt((v * v).sum(-1, keepdim=True) + _EPS)


def facing_rotation(x: torch.Tensor) -> torch.Tensor:
    """Rotation ``(B, 3, 3)`` about y that turns windows ``(B, T, 25, 3)`` to face the camera.

    The horizontal part of (right hip - left hip + right shoulder - left shoulder), averaged
    over the window, is turned onto +x; a degenerate direction gives the identity.
    """
    m = x.mean(1)  # (B, 25, 3)
    v = (
        m[:, Joint.HIP_RIGHT] - m[:, Joint.HIP_LEFT] + m[:, Joint.SHOULDER_RIGHT] - m[:, Joint.SHOULDER_LEFT]
    )  # (B, 3)
    h = torch.sqrt(v[:, 0] ** 2 + v[:, 2] ** 2 + _EPS)
    c, s = v[:, 0] / h, v[:, 2] / h
    z, o = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack(
        [torch.stack([c, z, s], -1), torch.stack([z, o, z], -1), torch.stack([-s, z, c], -1)], 1
    )


def bone_directions(x: torch.Tensor) -> torch.Tensor:
    """Unit bone vectors ``(..., 24, 3)`` of joints ``(..., 25, 3)``."""
    return _unit(x[..., list(CHILD), :] - x[..., list(PARENT), :])


def rotation_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rotations ``(..., 3, 3)`` taking unit vectors ``a`` to unit vectors ``b`` ``(..., 3)``.

    Rodrigues' formula in the form ``I + K + K^2 / (1 + a.b)``, stable for small angles;
    ``a`` and ``b`` are never opposite here (the blend target lies between them).
    """
    v = torch.stack([  # a x b, written out (exports to plain ONNX)
        a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
        a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
        a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
    ], -1)  # fmt: skip
    c = (a * b).sum(-1)
    zero = torch.zeros_like(c)
    k = torch.stack([
        torch.stack([zero, -v[..., 2], v[..., 1]], -1),
        torch.stack([v[..., 2], zero, -v[..., 0]], -1),
        torch.stack([-v[..., 1], v[..., 0], zero], -1),
    ], -2)  # fmt: skip
    eye = torch.eye(3, dtype=a.dtype, device=a.device)
    return eye + k + (k @ k) / (1.0 + c).clamp_min(1e-3)[..., None, None]


class Retarget(torch.nn.Module):
    """Identity-normalising retarget onto a dummy (see the module docstring).

    Buffers: ``bones`` ``(24,)`` the dummy's bone lengths (metres), ``rest`` ``(24, 3)`` the
    dummy's mean bone directions facing the camera, ``paths`` ``(25, 24)``.
    """

    bones: torch.Tensor
    rest: torch.Tensor
    paths: torch.Tensor

    def __init__(self, bones: torch.Tensor, rest: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("bones", bones.detach().clone().float().reshape(len(CHILD)))
        self.register_buffer("rest", _unit(rest.detach().clone().float().reshape(len(CHILD), 3)))
        self.register_buffer("paths", bone_paths())

    @classmethod
    def from_dummy(cls, dummy: npt.ArrayLike) -> Retarget:
        """From a dummy window ``(T, 25, 3)`` metres: its median bone lengths and facing rest directions."""
        d = np.asarray(dummy, dtype=np.float64)
        from pmr_stream.skeleton import median_bone_lengths

        r = view_rotation(d.mean(0))
        dirs = bone_directions(torch.from_numpy(d @ r.T)).mean(0)
        return cls(torch.from_numpy(median_bone_lengths(d.astype(np.float32))), dirs)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None, setting: DialSetting) -> torch.Tensor:
        """``x`` ``(B, T, 25, 3)``, ``residual`` ``(B, T, 25, 3)`` or None -> ``(B, T, 25, 3)`` metres."""
        rot = facing_rotation(x)  # (B, 3, 3)
        xa = x @ rot.transpose(1, 2)[:, None]  # aligned (B, T, 25, 3)
        u = bone_directions(xa)  # (B, T, 24, 3)
        if setting.posture > 0:
            m = u.mean(1)  # (B, 24, 3)
            norm = torch.sqrt((m * m).sum(-1) + _EPS)  # (B, 24)
            var = 1.0 - norm
            w = setting.posture * torch.exp(-var / setting.quiet)  # (B, 24)
            mh = m / norm[..., None]
            tgt = _unit(mh * (1 - w[..., None]) + self.rest * w[..., None])
            r = rotation_between(mh, tgt)  # (B, 24, 3, 3)
            u = torch.einsum("bkij,btkj->btki", r, u)
            if setting.motion != 1.0:
                u = _unit(tgt[:, None] + setting.motion * (u - tgt[:, None]))
        if residual is not None and setting.residual != 0:
            u = _unit(u + setting.residual * residual[:, :, list(CHILD), :])
        root = xa[:, :, ROOT : ROOT + 1, :]  # (B, T, 1, 3)
        if setting.root_scale:
            own = torch.sqrt(
                ((xa[:, :, list(LEG_CHILD), :] - xa[:, :, list(LEG_PARENT), :]) ** 2).sum(-1) + _EPS
            )
            ratio = self.bones[list(LEG_BONES)].sum() / own.mean(1).sum(-1).clamp_min(1e-3)  # (B,)
            root = root[:, :1] + ratio[:, None, None, None] * (root - root[:, :1])
        y = root + torch.einsum("jk,btkc->btjc", self.paths, u * self.bones[:, None])
        # the window convention: SpineMid of the first frame at the origin (keeping the original's root
        # offset would carry its SpineBase-SpineMid length, an identifying bone, into every frame)
        y = center_windows(y)[0]
        return y @ rot[:, None]  # back to the camera's frame


__all__ = ["Retarget", "bone_directions", "bone_paths", "facing_rotation", "rotation_between"]
