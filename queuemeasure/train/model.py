"""The network: a small fully convolutional encoder-decoder with CenterNet-style heads."""

from __future__ import annotations

import torch
from torch import nn

from ..detect.learned._grid import IN_CHANNELS

__all__ = ["VehicleNet", "OUT_CHANNELS"]

#: centre probability, log length, log width, centre offset down and across
OUT_CHANNELS = 5


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class VehicleNet(nn.Module):
    """Input ``(N, 4, H, W)`` (H, W multiples of 8) at 0.25 m; output ``(N, 5, H/2, W/2)``.

    Encoder: 0.25 m (16 channels), 0.5 m (32), 1 m (48), 2 m (64, dilated: a receptive
    field of about 25 m); decoder back to 0.5 m with skip connections; heads: sigmoid
    centre probability, log length and width in metres, sigmoid sub-cell offsets.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.e0 = _block(IN_CHANNELS, w)
        self.e1 = nn.Sequential(_block(w, 2 * w, 2), _block(2 * w, 2 * w))
        self.e2 = nn.Sequential(_block(2 * w, 3 * w, 2), _block(3 * w, 3 * w))
        self.e3 = nn.Sequential(_block(3 * w, 4 * w, 2), _block(4 * w, 4 * w, dilation=2))
        self.d2 = _block(7 * w, 3 * w)
        self.d1 = _block(5 * w, 2 * w)
        self.head = nn.Sequential(_block(2 * w, 2 * w), nn.Conv2d(2 * w, OUT_CHANNELS, 1))
        up = nn.Upsample(scale_factor=2, mode="nearest")
        self.up = up
        with torch.no_grad():  # start with a low centre probability (CenterNet's prior)
            self.head[-1].bias.zero_()
            self.head[-1].bias[0] = -2.2
            self.head[-1].bias[1] = 1.5   # log 4.5 m
            self.head[-1].bias[2] = 0.6   # log 1.8 m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f0 = self.e0(x)
        f1 = self.e1(f0)
        f2 = self.e2(f1)
        f3 = self.e3(f2)
        g2 = self.d2(torch.cat([self.up(f3), f2], 1))
        g1 = self.d1(torch.cat([self.up(g2), f1], 1))
        y = self.head(g1)
        return torch.cat([torch.sigmoid(y[:, :1]), y[:, 1:3], torch.sigmoid(y[:, 3:5])], 1)
