"""The ImageNet classics at full size in plain PyTorch, for performance studies.

Batch 1, random weights (seeded): the accelerator's cycle counts do not depend on the values.
Shapes follow the papers: AlexNet (Krizhevsky 2012, 227x227, single-tower), VGG-16
(configuration D), ResNet-18 and ResNet-50 (He 2016), NIN (Lin 2014, ImageNet variant with
global average pooling), GoogLeNet (Szegedy 2015, without the auxiliary classifiers), and
LeNet-5 (models/lenet5.py). `build(name)` returns (module, input shape).
"""

from __future__ import annotations

import torch
from torch import nn

from .lenet5 import LeNet5

__all__ = ["NETWORKS", "build", "alexnet", "vgg16", "resnet18", "resnet50", "nin", "googlenet"]


def _conv(cin: int, cout: int, k: int, s: int = 1, p: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, s, p), nn.ReLU()]


def alexnet() -> nn.Module:
    return nn.Sequential(
        *_conv(3, 96, 11, 4), nn.MaxPool2d(3, 2),               # 227 -> 55 -> 27
        *_conv(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),           # 27 -> 13
        *_conv(256, 384, 3, 1, 1), *_conv(384, 384, 3, 1, 1),
        *_conv(384, 256, 3, 1, 1), nn.MaxPool2d(3, 2),          # 13 -> 6
        nn.Flatten(), nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
        nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))


def vgg16() -> nn.Module:
    layers: list[nn.Module] = []
    cin = 3
    for block in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for cout in block:
            layers += _conv(cin, cout, 3, 1, 1)
            cin = cout
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(),
                         nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
                         nn.Linear(4096, 1000))


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                  nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.skip(x))


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.skip(x))


def _resnet(block: type, counts: tuple[int, ...], expansion: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                               nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for stage, (width, count) in enumerate(zip((64, 128, 256, 512), counts)):
        for i in range(count):
            layers.append(block(cin, width, 2 if stage > 0 and i == 0 else 1))
            cin = width * expansion
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000))


def resnet18() -> nn.Module:
    return _resnet(_Basic, (2, 2, 2, 2), 1)


def resnet50() -> nn.Module:
    return _resnet(_Bottleneck, (3, 4, 6, 3), 4)


def nin() -> nn.Module:
    def mlpconv(cin: int, cout: int, k: int, s: int, p: int) -> list[nn.Module]:
        return [*_conv(cin, cout, k, s, p), *_conv(cout, cout, 1), *_conv(cout, cout, 1)]

    return nn.Sequential(
        *mlpconv(3, 96, 11, 4, 0), nn.MaxPool2d(3, 2), nn.Dropout(),      # 224 -> 54 -> 26
        *mlpconv(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2), nn.Dropout(),     # 26 -> 12
        *mlpconv(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(),    # 12 -> 5
        *_conv(384, 1024, 3, 1, 1), *_conv(1024, 1024, 1), *_conv(1024, 1000, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten())


class _Inception(nn.Module):
    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pp: int):
        super().__init__()
        self.b1 = nn.Sequential(*_conv(cin, c1, 1))
        self.b2 = nn.Sequential(*_conv(cin, c3r, 1), *_conv(c3r, c3, 3, 1, 1))
        self.b3 = nn.Sequential(*_conv(cin, c5r, 1), *_conv(c5r, c5, 5, 1, 2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), *_conv(cin, pp, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def googlenet() -> nn.Module:
    return nn.Sequential(
        *_conv(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, ceil_mode=True),        # 224 -> 112 -> 56
        *_conv(64, 64, 1), *_conv(64, 192, 3, 1, 1), nn.MaxPool2d(3, 2, ceil_mode=True),
        _Inception(192, 64, 96, 128, 16, 32, 32), _Inception(256, 128, 128, 192, 32, 96, 64),
        nn.MaxPool2d(3, 2, ceil_mode=True),                                  # 28 -> 14
        _Inception(480, 192, 96, 208, 16, 48, 64), _Inception(512, 160, 112, 224, 24, 64, 64),
        _Inception(512, 128, 128, 256, 24, 64, 64), _Inception(512, 112, 144, 288, 32, 64, 64),
        _Inception(528, 256, 160, 320, 32, 128, 128), nn.MaxPool2d(3, 2, ceil_mode=True),
        _Inception(832, 256, 160, 320, 32, 128, 128), _Inception(832, 384, 192, 384, 48, 128, 128),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4), nn.Linear(1024, 1000))


NETWORKS = {
    "lenet5": (lambda: LeNet5(), (1, 1, 32, 32)),
    "alexnet": (alexnet, (1, 3, 227, 227)),
    "vgg16": (vgg16, (1, 3, 224, 224)),
    "resnet18": (resnet18, (1, 3, 224, 224)),
    "resnet50": (resnet50, (1, 3, 224, 224)),
    "nin": (nin, (1, 3, 224, 224)),
    "googlenet": (googlenet, (1, 3, 224, 224)),
}


def build(name: str, *, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    """A seeded, evaluation-mode network and its batch-1 input shape."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(NETWORKS)}")
    torch.manual_seed(seed)
    factory, shape = NETWORKS[name]
    return factory().eval(), shape
