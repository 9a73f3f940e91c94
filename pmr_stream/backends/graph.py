"""The streaming graph in two exact forms: the network as defined, and a folded one with 44% of its FLOPs.

Every backend runs ``anonymized = D(E_M(windows), z_dummy)`` with the dummy's
privacy code ``z_dummy`` fixed at start-up. Two modules compute it:

``reference``
    :class:`pmr_stream.model.pmr.AnonymizerGraph`, the network as defined
    (41.0 MFLOP per window).

``folded`` (the default everywhere)
    :class:`FoldedAnonymizerGraph`, the same function rewritten for a fixed
    dummy (17.9 MFLOP per window). Every step is an exact identity; only the
    order of floating-point sums changes (relative difference ~1e-6, inside
    the 1e-5 parity bound):

    1. E_M's blocks (ReflectionPad2d, Conv2d 3x3, LeakyReLU, MaxPool2d) run
       channels-last and contraction first: one GEMM gives each input
       position's contribution to each of the 9 taps, each output position
       gathers and adds its taps (the padding is in the gather indices), and
       max-pooling is taken before bias and LeakyReLU, which commute with it.
       The first block's GEMM has half the FLOPs of the convolution and a
       shape CPUs run well (it was 35% of the time at batch 256).
    2. Everything linear between E_M's global pooling and the decoder's first
       non-linearity (the pooling's mean, E_M's Linear, the reshape, the concat
       with the constant ``z_dummy``, ReflectionPad1d, the first
       ConvTranspose1d) is one affine map ``h -> h @ A + c``; ``z_dummy``
       lives in ``c``.
    3. Each later ConvTranspose1d (k3, stride 1) is a 3-tap convolution of an
       upsampled, reflection-padded input, so no window reads three different
       columns: output columns fall into two phases, ``(a, a, b)`` and
       ``(a, b, b)``, and each phase is one GEMM with the two taps that read
       the same column summed beforehand (a third fewer products).
    4. The final nearest resize keeps 75 of the last layer's 218 columns;
       only those 75 are computed.

    Activations are channels-last ``(B, rows, C)`` with one all-zero row that
    padding taps read, so every layer is one large GEMM over ``B x rows``.
    The index tables are found by pushing position numbers through the
    model's own padding and upsampling modules, and the result is checked
    against the reference in the tests. It exports to plain ONNX (Transpose,
    Pad, MatMul, Gather, ReduceSum, ReduceMax, Add, LeakyRelu, Concat, Reshape).

``build_graph(model, code, kind)`` returns either, in eval mode, on the model's device.
"""

from __future__ import annotations

import copy
from typing import Final, Literal, cast

import torch
from torch import nn
from torch.nn import functional as F

from pmr_stream.model.pmr import AnonymizerGraph, Decoder, PMRModel, RetargetFinish
from pmr_stream.skeleton import C, J, T

GraphKind = Literal["folded", "reference"]
GRAPH_KINDS: Final[tuple[str, ...]] = ("folded", "reference")
#: LeakyReLU slope of the network (../shared/docs/PMR_FACTS.md).
SLOPE: Final[float] = 0.2


def _check_deconv(d: nn.ConvTranspose1d) -> None:
    """The folding assumes ConvTranspose1d(k, stride 1, padding p <= k-1, no dilation/groups/output padding)."""
    ok = (
        d.stride == (1,) and d.dilation == (1,) and d.groups == 1 and d.output_padding == (0,)
        and d.padding_mode == "zeros" and isinstance(d.padding, tuple) and d.padding[0] <= d.kernel_size[0] - 1
    )  # fmt: skip
    if not ok:
        raise ValueError(f"cannot fold {d}: expected stride 1, no dilation, groups or output padding")


def _as_conv_weight(d: nn.ConvTranspose1d) -> torch.Tensor:
    """ConvTranspose1d(stride 1) weight ``(in, out, k)`` as the equivalent Conv1d weight ``(out, in, k)``.

    The matching Conv1d has zero padding ``k - 1 - padding`` (see :func:`_taps`).
    """
    return d.weight.detach().flip(-1).transpose(0, 1)  # (out, in, k)


def _taps(length: int, pre: nn.Module | None, deconv: nn.ConvTranspose1d) -> torch.Tensor:
    """Source column of each tap of each output column of ``deconv(pre(x))``, ``(L_out, k)``, -1 = zero.

    Found by pushing column numbers through the very modules the decoder uses
    (upsampling, reflection padding), so the indices follow the definition.
    """
    k = int(deconv.kernel_size[0])
    zero_pad = k - 1 - int(deconv.padding[0])
    idx = torch.arange(1, length + 1, dtype=torch.float64).view(1, 1, length)  # 1-based; 0 marks zeros
    if pre is not None:
        idx = pre(idx)
    idx = F.pad(idx, (zero_pad, zero_pad))  # the equivalent Conv1d's zero padding
    windows = idx[0, 0].unfold(0, k, 1)  # (L_out, k)
    return windows.round().long() - 1


def _fits(row: list[int], part: tuple[tuple[int, ...], ...]) -> bool:
    """Whether the taps in each part of ``part`` all read the same source in ``row``."""
    return all(len({row[t] for t in group}) == 1 for group in part)


def _natural(row: list[int]) -> tuple[tuple[int, ...], ...]:
    """Taps grouped by the source they read, in tap order: (a, a, b) -> ((0, 1), (2,))."""
    groups: dict[int, list[int]] = {}
    for tap, src in enumerate(row):
        groups.setdefault(src, []).append(tap)
    return tuple(sorted((tuple(g) for g in groups.values()), key=lambda g: g[0]))


def _refine(part: tuple[tuple[int, ...], ...], m: int) -> tuple[tuple[int, ...], ...]:
    """Split the largest parts of ``part`` until it has ``m`` parts."""
    parts = [list(g) for g in part]
    while len(parts) < m:
        big = max(range(len(parts)), key=lambda i: len(parts[i]))
        parts[big : big + 1] = [parts[big][:1], parts[big][1:]]
    return tuple(sorted((tuple(g) for g in parts), key=lambda g: g[0]))


class _GatherConv(nn.Module):
    """One decoder layer as gathers and GEMMs, channels-last: ``(B, R_in, C_in) -> (B, R_out, C_out)``.

    ``taps`` ``(N, k)`` names the input row each kernel tap of each output column
    reads (``zero_in``: the input's all-zero row, standing for padding zeros).
    After upsampling and reflection padding, no 3-tap window reads three
    different columns, so each column reads ``(a, a, b)`` or ``(a, b, b)``: the
    columns form two phases whose taps reading the same row share one summed
    weight, and each phase is one GEMM with ``K = 2 * C_in`` instead of
    ``3 * C_in``. Rows come out phase by phase (``rows[c]`` says where column
    ``c`` went); with ``zero_row`` one extra output row is exactly zero (no
    input, no bias), for the next layer's padding taps.
    """

    bias: torch.Tensor

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, taps: torch.Tensor, zero_in: int,
                 zero_row: bool) -> None:  # fmt: skip
        super().__init__()
        c_out, c_in, _ = weight.shape
        table = taps.tolist()
        m = max(len(_natural(row)) for row in table)
        phases: list[tuple[tuple[int, ...], ...]] = []
        for row in table:  # columns with m distinct sources fix the phases
            nat = _natural(row)
            if len(nat) == m and nat not in phases:
                phases.append(nat)
        members: list[list[int]] = [[] for _ in phases]
        for col, row in enumerate(table):
            fit = [i for i, part in enumerate(phases) if _fits(row, part)]
            if not fit:
                phases.append(_refine(_natural(row), m))
                members.append([])
                fit = [len(phases) - 1]
            members[min(fit, key=lambda i: len(members[i]))].append(col)
        if zero_row:
            members[min(range(len(members)), key=lambda i: len(members[i]))].append(-1)
        self.c_in, self.m, self.n_cols = c_in, m, len(table)
        self.sizes: list[int] = []
        order: list[int] = []
        for p, (part, cols) in enumerate(zip(phases, members, strict=True)):
            w = torch.stack([weight[:, :, list(group)].sum(-1) for group in part])  # (m, out, in)
            self.register_buffer(
                f"w{p}", w.permute(0, 2, 1).reshape(m * c_in, c_out).contiguous()
            )  # (m*in, out)
            index = [[zero_in] * m if c < 0 else [table[c][group[0]] for group in part] for c in cols]
            self.register_buffer(f"i{p}", torch.tensor(index, dtype=torch.long).reshape(-1))  # (cols_p * m,)
            self.sizes.append(len(cols))
            order += cols
        self.rows = [0] * len(table)
        for r, c in enumerate(order):
            if c >= 0:
                self.rows[c] = r
        self.zero_row = order.index(-1) if zero_row else -1
        full_bias = bias.detach().reshape(1, c_out).repeat(len(order), 1)  # (R_out, C_out)
        if zero_row:
            full_bias[self.zero_row] = 0.0
        self.register_buffer("bias", full_bias.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for p, n in enumerate(self.sizes):
            gathered = torch.index_select(x, 1, getattr(self, f"i{p}"))  # (B, n*m, C_in)
            outs.append(
                torch.matmul(gathered.reshape(-1, n, self.m * self.c_in), getattr(self, f"w{p}"))
            )  # (B, n, C_out)
        y = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)  # (B, R_out, C_out), phase order
        return y + self.bias

    def extra_repr(self) -> str:
        return f"{self.n_cols} columns, C_in {self.c_in}, {len(self.sizes)} phases of {self.sizes} rows, {self.m} taps"


def _check_encoder(conv: nn.Conv2d, pool: nn.Module) -> None:
    """The encoder fold assumes Conv2d(k, stride 1, no dilation/groups, zero padding) and MaxPool2d(2)."""
    ok_conv = (conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
               and isinstance(conv.padding, tuple))  # fmt: skip
    ok_pool = isinstance(pool, nn.MaxPool2d) and pool.kernel_size in (2, (2, 2)) and pool.stride in (2, (2, 2)) \
        and pool.padding in (0, (0, 0)) and pool.dilation in (1, (1, 1)) and not pool.ceil_mode  # fmt: skip
    if not (ok_conv and ok_pool):
        raise ValueError(
            f"cannot fold encoder block {conv} + {pool}: expected stride-1 conv and MaxPool2d(2)"
        )


class _TapConv2d(nn.Module):
    """One encoder block, channels-last: ReflectionPad2d, Conv2d, MaxPool2d(2) and LeakyReLU.

    ``(B, P_in + 1, C_in) -> (B, P_out + 1, C_out)``: rows are grid positions
    (row-major), the last row is all zero. The convolution is done
    contraction first: one GEMM ``x @ W`` gives every input position's
    contribution to every tap, ``(B, P_in + 1, 9 * C_out)``; each output position
    then gathers its 9 taps' contributions (reflection and zero padding are in
    the gather's indices) and adds them. Max-pooling happens on the sums, before
    bias and LeakyReLU (both commute with max), and only pooled positions are
    computed. The GEMM is ``P_in`` rows long instead of ``P_out x 9 x C_in``
    deep, half the FLOPs of the first block and a far better shape.
    """

    bias: torch.Tensor
    weight: torch.Tensor
    index: torch.Tensor

    def __init__(self, conv: nn.Conv2d, pad: nn.Module, height: int, width: int) -> None:
        super().__init__()
        c_out, c_in, kh, kw = conv.weight.shape
        taps = kh * kw
        positions = height * width
        zero = positions  # the input's all-zero row
        idx = torch.arange(1, positions + 1, dtype=torch.float64).view(1, 1, height, width)  # 0 marks zeros
        ph, pw = (int(v) for v in conv.padding)
        grid = F.pad(pad(idx), (pw, pw, ph, ph))[0, 0]  # reflection, then the conv's zero padding
        out_h, out_w = grid.shape[0] - kh + 1, grid.shape[1] - kw + 1
        src = (
            grid.unfold(0, kh, 1).unfold(1, kw, 1).reshape(out_h, out_w, taps).round().long() - 1
        )  # (H', W', 9)
        src[src < 0] = zero
        self.pooled_h, self.pooled_w = out_h // 2, out_w // 2
        rows = []
        for i in range(self.pooled_h):
            for j in range(self.pooled_w):
                members = [src[2 * i + di, 2 * j + dj] for di in (0, 1) for dj in (0, 1)]  # 4 x (9,)
                rows.append(
                    torch.stack(members) * taps + torch.arange(taps)
                )  # (4, 9) rows of Z viewed per tap
        rows.append(torch.full((4, taps), zero * taps, dtype=torch.long))  # the output's zero row
        self.register_buffer("index", torch.stack(rows).reshape(-1).contiguous())  # ((P_out + 1) * 4 * 9,)
        w = conv.weight.detach().float().permute(1, 2, 3, 0).reshape(c_in, taps * c_out)  # (C_in, 9 * C_out)
        self.register_buffer("weight", w.contiguous())
        b = (conv.bias.detach().float() if conv.bias is not None else torch.zeros(c_out)).reshape(1, c_out)
        bias = b.repeat(len(rows), 1)
        bias[-1] = 0.0
        self.register_buffer("bias", bias.contiguous())  # (P_out + 1, C_out)
        self.c_out, self.taps, self.rows, self.z_rows = c_out, taps, len(rows), (positions + 1) * taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.matmul(x, self.weight)  # (B, P_in + 1, 9 * C_out), last row zero
        z = z.reshape(-1, self.z_rows, self.c_out)  # (B, (P_in + 1) * 9, C_out): one row per (position, tap)
        g = torch.index_select(z, 1, self.index).reshape(-1, self.rows, 4, self.taps, self.c_out)
        y = g.sum(dim=3).amax(dim=2)  # (B, P_out + 1, C_out): conv sums, then the 2x2 max
        return F.leaky_relu(y + self.bias, SLOPE)

    def extra_repr(self) -> str:
        return f"{self.rows - 1} pooled positions ({self.pooled_h}x{self.pooled_w}), C_out {self.c_out}"


class FoldedAnonymizerGraph(nn.Module):
    """``D(E_M(windows), z_dummy)`` with the dummy folded in: ``(B, 75, 25, 3) -> (B, 75, 25, 3)``.

    Equal to :class:`~pmr_stream.model.pmr.AnonymizerGraph` up to float rounding;
    see the module docstring for the identities it uses.
    """

    first_weight: torch.Tensor
    first_bias: torch.Tensor
    out_rows: torch.Tensor

    def __init__(self, model: PMRModel, code: torch.Tensor) -> None:
        super().__init__()
        enc = model.motion_encoder
        dec: Decoder = model.decoder
        deconvs = cast("list[nn.ConvTranspose1d]", list(dec.deconvs))
        for d in deconvs:
            _check_deconv(d)
        c0, c1 = model.config.encoded_channels
        device = next(model.parameters()).device
        # 1. E_M up to its global pooling as channels-last gather-GEMM blocks
        blocks, (h, w) = [], (J, C)
        for conv in enc.convs:
            _check_encoder(cast(nn.Conv2d, conv), enc.pool)
            blocks.append(_TapConv2d(cast(nn.Conv2d, conv), enc.pad, h, w).to(device))
            h, w = blocks[-1].pooled_h, blocks[-1].pooled_w
        pooled = h * w  # positions averaged by the global pooling (3 x 2)
        self.encoder_blocks = nn.ModuleList(blocks)

        # 2. h (B, C0) -> first decoder layer's pre-activation, channels-last (B, L1, 256): one affine map.
        with torch.no_grad():
            fc = copy.deepcopy(enc.fc).double().cpu()
            d1 = copy.deepcopy(deconvs[0]).double().cpu()
            pad = copy.deepcopy(dec.pad)
            z = code.detach().double().cpu().reshape(1, c0, c1)

            def first(h: torch.Tensor) -> torch.Tensor:  # (N, C0) -> (N, L1 * C_out), float64
                motion = fc(h).view(-1, c0, c1)
                y = d1(pad(torch.cat([motion, z.expand(len(h), -1, -1)], dim=1)))  # (N, C_out, L1)
                return y.transpose(1, 2).reshape(len(h), -1)  # (N, L1 * C_out)

            offset = first(torch.zeros(1, c0, dtype=torch.float64))  # (1, L1*C_out)
            matrix = first(torch.eye(c0, dtype=torch.float64)) - offset  # (C0, L1*C_out)
            self.c1_out = int(deconvs[0].out_channels)
            length = int(matrix.shape[1]) // self.c1_out  # L1 = 22
            # one more row, all zero (no weight, no bias): what the next layer's padding taps read
            self.l1 = length + 1
            zeros = torch.zeros(c0, self.c1_out, dtype=torch.float64)
            # the encoder hands over the sum of the pooled positions, not their mean: 1/6 goes in here
            self.register_buffer(
                "first_weight", (torch.cat([matrix, zeros], 1) / pooled).float().to(device)
            )  # (C0, 23*256)
            self.register_buffer(
                "first_bias", torch.cat([offset[0], zeros[0]]).float().to(device)
            )  # (23*256,)

            # 3. and 4. later layers as gather-GEMMs; upsampling and padding fold into the gathers.
            rows, zero_in = list(range(length)), length  # where each column of the previous layer lives
            layers = []
            for i, d in enumerate(deconvs[1:], start=1):
                last = i == len(deconvs) - 1
                taps = _taps(length, nn.Sequential(_Upsample2(), dec.pad), d)  # (L_out, k) previous columns
                if last:
                    # the final nearest resize keeps only some columns: compute just those
                    keep = F.interpolate(torch.arange(len(taps), dtype=torch.float64).view(1, 1, -1), size=int(dec.out_len),
                                         mode="nearest")[0, 0].round().long()  # fmt: skip
                    taps = taps[keep]
                lookup = torch.tensor(rows + [zero_in], dtype=torch.long)  # column -> row; -1 -> the zero row
                bias = d.bias.detach() if d.bias is not None else torch.zeros(d.out_channels)
                layer = _GatherConv(_as_conv_weight(d).float().cpu(), bias.float().cpu(), lookup[taps],
                                    zero_in, zero_row=not last)  # fmt: skip
                layers.append(layer.to(device))
                rows, zero_in, length = layer.rows, layer.zero_row, len(taps)
            self.layers = nn.ModuleList(layers)
            # the last layer's rows back in column order (none to move when already in order)
            self.reorder = rows != list(range(len(rows)))
            self.register_buffer("out_rows", torch.tensor(rows, dtype=torch.long, device=device))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        x = windows.reshape(-1, T, J * C).transpose(1, 2)  # (B, 75 positions, 75 frames) channels-last
        x = F.pad(x, (0, 0, 0, 1))  # (B, 76, 75): the all-zero row the padding taps read
        for block in self.encoder_blocks:
            x = block(x)  # (B, P' + 1, C')
        h = x.sum(dim=1)  # (B, C0): the zero row adds nothing; the 1/6 of the mean is in first_weight
        z = F.leaky_relu(torch.matmul(h, self.first_weight) + self.first_bias, SLOPE)  # (B, L1*256)
        z = z.reshape(-1, self.l1, self.c1_out)  # (B, 22 + 1, 256) channels-last
        for layer in self.layers:
            z = F.leaky_relu(layer(z), SLOPE)  # (B, R', C')
        if self.reorder:
            z = torch.index_select(z, 1, self.out_rows)  # (B, 75 columns, 75 channels)
        # columns are joints x xyz, channels are frames: (B, 75, 75) -> (B, 75, 25, 3)
        return z.transpose(1, 2).reshape(-1, T, J, C)


class _Upsample2(nn.Module):
    """The decoder's ``F.interpolate(scale_factor=2.0, mode="nearest")``, as a module for index tracing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")


class FinishedGraph(nn.Module):
    """A folded core followed by the "retarget" head's last step at a fixed privacy level."""

    def __init__(self, core: nn.Module, finish: RetargetFinish) -> None:
        super().__init__()
        self.core = core
        self.finish = finish

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.finish(windows, self.core(windows))


def build_graph(
    model: PMRModel, code: torch.Tensor, kind: str = "folded", privacy: str | None = None
) -> nn.Module:
    """The streaming graph of ``kind`` (``folded`` or ``reference``), eval mode, no gradients.

    ``privacy``: the level of a model with a dial (``None``: its default); a model without
    one refuses a level (:meth:`PMRModel.resolve_privacy`).
    """
    level = model.resolve_privacy(privacy)
    if kind == "reference":
        graph: nn.Module = AnonymizerGraph(model, code, level)
    elif kind == "folded":
        graph = FoldedAnonymizerGraph(model, code)
        if model.retarget is not None:
            graph = FinishedGraph(graph, RetargetFinish(model.retarget, level))
    else:
        raise ValueError(f"unknown graph kind {kind!r}; choose one of {', '.join(GRAPH_KINDS)}")
    for p in graph.parameters():
        p.requires_grad_(False)
    return graph.eval()


def graph_flops(graph: nn.Module, batch: int = 1) -> int:
    """Floating-point operations (multiply and add counted apart) of one call on ``batch`` windows."""
    from torch.utils.flop_counter import FlopCounterMode

    p = next(iter(graph.buffers()), None)
    device = p.device if p is not None else torch.device("cpu")
    x = torch.zeros(batch, T, J, C, device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        graph(x)
    return int(counter.get_total_flops())
