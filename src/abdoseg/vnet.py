"""VNet (Milletari et al., 2016) with its width, depth, kernel size and normalisation as arguments.

Why not MONAI's `VNet`: it fixes the widths (16..256), applies dropout on two decoder skips always and needs
input sizes divisible by 16; a network that trains on two CPU cores in minutes needs fewer channels and levels.
At the paper's settings (base 16, kernel 5, depth 4) this module has MONAI's layout: the same stages, convolutions
per stage, channel counts and output shape (tests/test_vnet.py compares them).

>>> net = VNet(in_channels=1, out_channels=5, base_channels=8, depth=3, kernel_size=3)
>>> net(torch.zeros(1, 1, 32, 32, 32)).shape
torch.Size([1, 5, 32, 32, 32])
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"model.norm must be batch, instance or none, not {kind!r}")


class _ConvBlock(nn.Sequential):
    """Convolution (same padding), normalisation, PReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, norm: str):
        super().__init__(nn.Conv3d(cin, cout, kernel, padding=kernel // 2), _norm(norm, cout), nn.PReLU(cout))


class _ResidualStage(nn.Module):
    """`n` convolutions whose output is added to the stage input (the VNet residual), then PReLU."""

    def __init__(self, channels: int, n: int, kernel: int, norm: str):
        super().__init__()
        layers = [_ConvBlock(channels, channels, kernel, norm) for _ in range(n - 1)]
        layers += [nn.Conv3d(channels, channels, kernel, padding=kernel // 2), _norm(norm, channels)]
        self.convs = nn.Sequential(*layers)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + x)


class _Down(nn.Module):
    """Strided 2x2x2 convolution doubling the channels, then a residual stage."""

    def __init__(self, cin: int, n: int, kernel: int, norm: str, dropout: float):
        super().__init__()
        self.down = nn.Sequential(nn.Conv3d(cin, 2 * cin, 2, stride=2), _norm(norm, 2 * cin), nn.PReLU(2 * cin))
        self.drop = nn.Dropout3d(dropout) if dropout > 0 else nn.Identity()
        self.stage = _ResidualStage(2 * cin, n, kernel, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage(self.drop(self.down(x)))


class _Up(nn.Module):
    """Transposed 2x2x2 convolution to half of `cout`, concatenation with the skip, then a residual stage."""

    def __init__(self, cin: int, cout: int, n: int, kernel: int, norm: str, dropout: float):
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose3d(cin, cout // 2, 2, stride=2), _norm(norm, cout // 2), nn.PReLU(cout // 2))
        self.drop = nn.Dropout3d(dropout) if dropout > 0 else nn.Identity()
        self.stage = _ResidualStage(cout, n, kernel, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.stage(torch.cat([self.up(self.drop(x)), skip], dim=1))


class VNet(nn.Module):
    """A volumetric encoder-decoder with residual stages, strided-conv down-sampling and transposed-conv up-sampling.

    Args:
        in_channels: image channels (1 for CT).
        out_channels: classes, background included (5 here); the output is logits.
        base_channels: channels of the first stage; each level doubles them (paper: 16).
        depth: number of down-samplings; inputs must be divisible by 2**depth (paper: 4).
        kernel_size: convolution size inside stages (paper: 5).
        norm: "batch" (paper, MONAI), "instance" or "none".
        convs_per_level: convolutions in the down stages 1..depth; the up stages mirror them.
        dropout: probability of channel dropout before the deepest stages (0 disables).
        deep_supervision: extra 1x1x1 class heads on this many coarser decoder stages (0: none, the paper's).
            In training mode the forward pass then returns [full-resolution logits, half, quarter, ...] for a
            loss at every scale (nnU-Net's deep supervision); in eval mode only the full-resolution logits.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 5, base_channels: int = 16, depth: int = 4,
                 kernel_size: int = 5, norm: str = "batch", convs_per_level: list[int] | None = None, dropout: float = 0.0,
                 deep_supervision: int = 0):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"model.kernel_size must be odd, not {kernel_size}")
        convs = list(convs_per_level or [1, 2, 3, 2][:depth] + [2] * max(0, depth - 4))
        if len(convs) != depth:
            raise ValueError(f"model.convs_per_level needs {depth} entries (one per level), got {convs}")
        if not 0 <= deep_supervision < depth:
            raise ValueError(f"model.deep_supervision must be between 0 and depth - 1 ({depth - 1}), not {deep_supervision}")
        self.depth = depth
        self.base = base_channels
        self.in_conv = nn.Sequential(nn.Conv3d(in_channels, base_channels, kernel_size, padding=kernel_size // 2),
                                     _norm(norm, base_channels))
        self.in_act = nn.PReLU(base_channels)
        enc = [base_channels * 2 ** level for level in range(depth + 1)]
        deep = max(depth - 2, 0)  # dropout on the two deepest levels, as in MONAI's VNet
        self.downs = nn.ModuleList(
            _Down(enc[level], convs[level], kernel_size, norm, dropout if level >= deep else 0.0) for level in range(depth))
        ups = []
        cin = enc[depth]
        for level in reversed(range(depth)):
            cout = 2 * enc[level]
            ups.append(_Up(cin, cout, convs[level] if level > 0 else 1, kernel_size, norm,
                           dropout if level >= deep else 0.0))
            cin = cout
        self.ups = nn.ModuleList(ups)
        # the paper's head: a 1x1x1 convolution to one map per class. (MONAI adds a normalised k^3 convolution
        # before it; normalising the class maps slowed training markedly here, see docs/benchmarks.md.)
        self.out = nn.Conv3d(cin, out_channels, 1)
        # heads on the up stages just above the last one, finest first: up stage -2 gives half resolution, ...
        self.heads = nn.ModuleList(nn.Conv3d(2 * enc[level], out_channels, 1) for level in range(1, deep_supervision + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        for d in range(2, 5):
            if x.shape[d] % 2 ** self.depth:
                raise ValueError(f"VNet input size {tuple(x.shape[2:])} must be divisible by {2 ** self.depth}")
        reps = self.base // x.shape[1]
        h = self.in_act(self.in_conv(x) + x.repeat(1, reps, 1, 1, 1))
        skips = [h]
        for down in self.downs:
            h = down(h)
            skips.append(h)
        skips.pop()
        coarse = []
        for up in self.ups:
            h = up(h, skips.pop())
            coarse.append(h)
        if not (self.training and len(self.heads)):
            return self.out(h)
        # coarse[-2] is half resolution, coarse[-3] a quarter, ...
        return [self.out(h), *(head(coarse[-2 - i]) for i, head in enumerate(self.heads))]


def build(model_params: dict, in_channels: int = 1, out_channels: int = 5) -> VNet:
    """Build the VNet from the `model` section of params.yaml."""
    return VNet(in_channels, out_channels, base_channels=int(model_params["base_channels"]), depth=int(model_params["depth"]),
                kernel_size=int(model_params["kernel_size"]), norm=str(model_params["norm"]),
                convs_per_level=model_params.get("convs_per_level"), dropout=float(model_params.get("dropout", 0.0)),
                deep_supervision=int(model_params.get("deep_supervision", 0)))
