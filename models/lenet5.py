"""LeNet-5 (LeCun et al., 1998) in plain PyTorch.

32x32 input; C1 6@5x5 -> 28x28; S2 2x2 pooling -> 14x14; C3 16@5x5 -> 10x10; S4 -> 5x5;
C5 120@5x5 -> 1x1; F6 84; 10 outputs. Two flavours:
- `relu-max` (default): ReLU and max pooling, the modern reading;
- `tanh-avg`: the original's squashing function and average pooling (subsampling), which the
  accelerator runs through its 256-entry activation lookup table.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LeNet5", "VARIANTS"]

VARIANTS = ("relu-max", "tanh-avg")


class LeNet5(nn.Module):
    def __init__(self, *, variant: str = "relu-max", classes: int = 10) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        act = nn.ReLU if variant == "relu-max" else nn.Tanh
        pool = nn.MaxPool2d if variant == "relu-max" else nn.AvgPool2d
        self.variant = variant
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), act(), pool(2),        # C1, S2
            nn.Conv2d(6, 16, 5), act(), pool(2),       # C3, S4
            nn.Conv2d(16, 120, 5), act(),              # C5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(120, 84), act(),   # F6
            nn.Linear(84, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
