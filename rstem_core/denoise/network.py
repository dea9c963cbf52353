"""The denoising U-Net: a small encoder-decoder with skip connections, one channel in and out.

The paper used a standard U-Net (Ronneberger et al.; Zhao et al. Fig. 2b). For speed on a CPU this
one can start with a pixel unshuffle (space-to-depth, lossless: every 2 x 2 block of pixels becomes
4 channels), so that its first convolutions run at half resolution, and it predicts a correction
that is added to its input (residual learning: the identity is free, the network learns the noise).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: the keys of :attr:`UNet.architecture` and their types
ARCHITECTURE_KEYS = {
    "name": str,
    "depth": int,
    "base_channels": int,
    "unshuffle": int,
    "convs_per_level": int,
    "residual": bool,
}


def _convs(c_in: int, c_out: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """U-Net for single-channel images.

    Parameters
    ----------
    depth : int
        Number of 2x down-sampling steps (1..6). Inputs must have rows and columns divisible by
        :attr:`size_multiple` = ``unshuffle * 2**depth`` (:func:`~.inference.denoise_frames` pads).
    base_channels : int
        Feature channels at the top level; each level down doubles them (capped at 16x).
    unshuffle : {1, 2, 4}
        1: a plain U-Net at full resolution. 2: pixel unshuffle first (four times fewer pixels,
        four channels), pixel shuffle at the end.
    convs_per_level : int
        3 x 3 convolutions (each followed by a ReLU) per level and direction (paper: 2).
    residual : bool
        Predict a correction added to the input instead of the image itself.

    Examples
    --------
    >>> net = UNet(depth=2, base_channels=4)
    >>> net(torch.zeros(1, 1, 16, 16)).shape
    torch.Size([1, 1, 16, 16])
    """

    def __init__(
        self,
        depth: int = 3,
        base_channels: int = 16,
        *,
        unshuffle: int = 1,
        convs_per_level: int = 2,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if not 1 <= int(depth) <= 6:
            raise ValueError(f"depth must be within 1..6, got {depth}")
        if not 1 <= int(base_channels) <= 256:
            raise ValueError(f"base_channels must be within 1..256, got {base_channels}")
        if unshuffle not in (1, 2, 4):
            raise ValueError(f"unshuffle must be 1, 2 or 4, got {unshuffle}")
        if not 1 <= int(convs_per_level) <= 4:
            raise ValueError(f"convs_per_level must be within 1..4, got {convs_per_level}")
        self.depth = int(depth)
        self.base_channels = int(base_channels)
        self.unshuffle = int(unshuffle)
        self.convs_per_level = int(convs_per_level)
        self.residual = bool(residual)
        c_in = self.unshuffle**2
        widths = [self.base_channels * min(2**k, 16) for k in range(self.depth + 1)]
        self.down = nn.ModuleList()
        prev = c_in
        for w in widths[:-1]:
            self.down.append(_convs(prev, w, self.convs_per_level))
            prev = w
        self.bottom = _convs(prev, widths[-1], self.convs_per_level)
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for k in range(self.depth - 1, -1, -1):
            self.upsample.append(nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2))
            self.up.append(_convs(2 * widths[k], widths[k], self.convs_per_level))
        self.head = nn.Conv2d(widths[0], c_in, 1)
        self.pool = nn.MaxPool2d(2)

    @property
    def size_multiple(self) -> int:
        """Rows and columns of an input must be multiples of this (px)."""
        return self.unshuffle * 2**self.depth

    @property
    def architecture(self) -> dict[str, Any]:
        """JSON-able description from which :meth:`from_architecture` rebuilds the network."""
        return {
            "name": "unet",
            "depth": self.depth,
            "base_channels": self.base_channels,
            "unshuffle": self.unshuffle,
            "convs_per_level": self.convs_per_level,
            "residual": self.residual,
        }

    @classmethod
    def from_architecture(cls, arch: dict[str, Any]) -> UNet:
        """Build an untrained network from :attr:`architecture`.

        Raises
        ------
        ValueError
            Unknown network name, missing or extra keys, or values of the wrong type.
        """
        if not isinstance(arch, dict) or arch.get("name") != "unet":
            name = arch.get("name") if isinstance(arch, dict) else type(arch).__name__
            raise ValueError(f"not a U-Net description (network {name!r})")
        if set(arch) != set(ARCHITECTURE_KEYS):
            raise ValueError(f"U-Net description keys {sorted(arch)} differ from {sorted(ARCHITECTURE_KEYS)}")
        for key, kind in ARCHITECTURE_KEYS.items():
            if not isinstance(arch[key], kind) or (kind is int and isinstance(arch[key], bool)):
                raise ValueError(f"U-Net description: {key} must be {kind.__name__}, got {arch[key]!r}")
        return cls(arch["depth"], arch["base_channels"], unshuffle=arch["unshuffle"],
                   convs_per_level=arch["convs_per_level"], residual=arch["residual"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a batch.

        Parameters
        ----------
        x : Tensor, shape (batch, 1, rows, cols)
            Normalised images; rows and cols multiples of :attr:`size_multiple`.

        Returns
        -------
        Tensor, shape (batch, 1, rows, cols)
        """
        rows, cols = x.shape[-2:]
        m = self.size_multiple
        if rows % m or cols % m:
            raise ValueError(f"input {rows}x{cols} px is not a multiple of {m} px; pad it first")
        h = nn.functional.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottom(h)
        for upsample, block in zip(self.upsample, self.up, strict=True):
            h = block(torch.cat([upsample(h), skips.pop()], dim=1))
        h = self.head(h)
        if self.unshuffle > 1:
            h = nn.functional.pixel_shuffle(h, self.unshuffle)
        return x + h if self.residual else h
