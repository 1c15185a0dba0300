"""SCR-Attention: a learned spatial-and-channel gate over a stage's output.

The paper's block is a k x k convolution C -> C, a sigmoid and an element-wise product
with the same input. The sigmoid is its own module (`gate`) so a forward hook on it
observes the attention map without touching the forward code.
"""

from __future__ import annotations

import torch
from torch import nn


class SCRA(nn.Module):
    """``x * sigmoid(conv_kxk(x))`` with C -> C channels and same padding."""

    def __init__(self, channels: int, kernel_size: int = 1, *, device: torch.device | str | None = None):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"SCRA kernel_size must be odd for same padding, got {kernel_size}")
        self.channels = channels
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, device=device)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.conv(x))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"
