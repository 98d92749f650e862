"""Seeded random PyTorch networks for the compiler tests, their ONNX exports, and the check
that the quantized reference agrees with onnxruntime's float outputs.

Error bound (stated in docs/compiler.md): a requantizing op rounds its output to half a step
of the output scale and adds about as much again through its rounded inputs and per-channel
weights; in these networks each layer's gain is about 1 or less (PyTorch's default
initialisation), so the errors of earlier layers do not grow on the way, except through a
lookup table, whose gain in steps is max|f'| * s_in / s_out (up to ~2 for the sigmoid and tanh
ranges here). With D requantizing ops on the longest path (convolutions, fully connected
layers, adds, average pools and lookup tables count once each) the test bound is
|y_ref - y_float| <= 2 * (D + 1) * s_out, s_out = max|y_float| / 127 over the images checked,
i.e. 2(D + 1)/127 of the output range. The images are the calibration images, so nothing is
clipped. The worst case measured over these models was 1.2 (D + 1) steps.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from compiler import reference
from compiler.frontend.torch_import import export_onnx
from compiler.qgraph import QAdd, QConv, QGraph, QPool

__all__ = ["MODELS", "build", "export", "ort_outputs", "reference_outputs", "depth",
           "check_close"]


def _seed(seed: int) -> None:
    torch.manual_seed(seed)


def _randomize_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
    return bn


class ConvNet(nn.Module):
    """One convolution (kernel, stride, padding, odd sizes) with an activation."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, pad: int, act: nn.Module,
                 groups: int = 1, dilation: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, groups=groups, dilation=dilation,
                              bias=bias)
        self.act = act

    def forward(self, x):
        return self.act(self.conv(x))


class BnActPool(nn.Module):
    """conv -> BN -> activation -> pooling, a standalone BN and a dropout."""

    def __init__(self, act: nn.Module, pool: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = _randomize_bn(nn.BatchNorm2d(6))
        self.act, self.pool = act, pool
        self.bn2 = _randomize_bn(nn.BatchNorm2d(6))
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        return self.bn2(self.drop(self.pool(self.act(self.bn(self.conv(x))))))


class Residual(nn.Module):
    """Two convolutions with a residual add, ReLU after the add, then a 3x3/2 overlapping max
    pool, global average pool, flatten and a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 10, 3, stride=2, padding=1)
        self.a = nn.Conv2d(10, 10, 3, padding=1)
        self.b = nn.Conv2d(10, 10, 1)
        self.fc = nn.Linear(10, 5)

    def forward(self, x):
        s = torch.relu(self.stem(x))
        y = torch.relu(self.b(torch.relu(self.a(s))) + s)
        y = nn.functional.max_pool2d(y, 3, 2)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class Inception(nn.Module):
    """Parallel branches concatenated along channels (1x1, 3x3, 5x5, pool branch), a ReLU
    after the concat, average pooling with padding, then flatten and two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(4, 3, 1)
        self.b3 = nn.Conv2d(4, 5, 3, padding=1)
        self.b5 = nn.Conv2d(4, 2, 5, padding=2)
        self.bp = nn.Conv2d(4, 3, 1)
        self.fc1 = nn.Linear(13 * 4 * 4, 19)
        self.fc2 = nn.Linear(19, 6)

    def forward(self, x):
        p = nn.functional.max_pool2d(x, 3, 1, 1)
        y = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(p)], 1)
        y = nn.functional.avg_pool2d(torch.relu(y), 3, 2, 1)
        return self.fc2(torch.tanh(self.fc1(torch.flatten(y, 1))))


class Classifier(nn.Module):
    """AlexNet-like head: 11x11/4 conv, ReLU, 3x3/2 max pool, 5x5 conv, LeakyReLU, softmax."""

    def __init__(self, softmax: bool) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 11, stride=4, padding=2)
        self.c2 = nn.Conv2d(8, 12, 5, padding=2)
        self.fc = nn.Linear(12 * 3 * 3, 10)
        self.softmax = softmax

    def forward(self, x):
        y = nn.functional.max_pool2d(torch.relu(self.c1(x)), 3, 2)
        y = nn.functional.leaky_relu(self.c2(y), 0.1)
        y = self.fc(torch.flatten(y, 1))
        return torch.softmax(y, 1) if self.softmax else y


#: name -> (builder, input shape); each builder is called after torch.manual_seed.
MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int, int]]] = {
    "conv1x1": (lambda: ConvNet(5, 7, 1, 1, 0, nn.Identity()), (1, 5, 7, 9)),
    "conv2s2": (lambda: ConvNet(3, 4, 2, 2, 0, nn.ReLU()), (1, 3, 9, 8)),
    "conv3s1p1": (lambda: ConvNet(17, 18, 3, 1, 1, nn.ReLU()), (1, 17, 11, 11)),
    "conv3s2": (lambda: ConvNet(3, 5, 3, 2, 1, nn.Sigmoid()), (1, 3, 15, 13)),
    "conv5s1p2": (lambda: ConvNet(6, 9, 5, 1, 2, nn.Tanh()), (1, 6, 9, 9)),
    "conv7s2p3": (lambda: ConvNet(3, 6, 7, 2, 3, nn.LeakyReLU(0.2)), (1, 3, 21, 19)),
    "conv11s4": (lambda: ConvNet(3, 5, 11, 4, 2, nn.ReLU()), (1, 3, 31, 27)),
    "conv4s4": (lambda: ConvNet(2, 3, 4, 4, 0, nn.ReLU6(), bias=False), (1, 2, 17, 16)),
    "depthwise": (lambda: ConvNet(6, 6, 3, 1, 1, nn.ReLU(), groups=6), (1, 6, 8, 8)),
    "dilated": (lambda: ConvNet(3, 4, 3, 1, 2, nn.ReLU(), dilation=2), (1, 3, 10, 10)),
    "bn_relu_max": (lambda: BnActPool(nn.ReLU(), nn.MaxPool2d(2)), (1, 3, 10, 10)),
    "bn_leaky_max3s2": (lambda: BnActPool(nn.LeakyReLU(0.1), nn.MaxPool2d(3, 2)),
                        (1, 3, 11, 11)),
    "bn_sigmoid_avg": (lambda: BnActPool(nn.Sigmoid(), nn.AvgPool2d(3, 2, 1)), (1, 3, 9, 9)),
    "bn_tanh_avg2": (lambda: BnActPool(nn.Tanh(), nn.AvgPool2d(2)), (1, 3, 8, 8)),
    "residual": (Residual, (1, 3, 15, 15)),
    "inception": (Inception, (1, 4, 8, 8)),
    "classifier": (lambda: Classifier(False), (1, 3, 35, 35)),
    "classifier_softmax": (lambda: Classifier(True), (1, 3, 35, 35)),
}


def build(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, int, int, int]]:
    torch.set_num_threads(1)
    builder, shape = MODELS[name]
    _seed(seed)
    return builder().eval(), shape


def export(name: str, directory: str, exporter: str) -> str:
    """Export model `name` with `exporter` in ("legacy", "dynamo", "opset9"); the path."""
    model, shape = build(name)
    path = os.path.join(directory, f"{name}-{exporter}.onnx")
    if exporter == "dynamo":
        export_onnx(model, shape, path, dynamo=True)
    else:
        export_onnx(model, shape, path, opset=9 if exporter == "opset9" else None)
    return path


def ort_outputs(model: str | bytes, x: np.ndarray) -> list[np.ndarray]:
    """onnxruntime's float outputs, image by image, on one thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    per_image = [session.run(None, {name: x[i:i + 1]}) for i in range(len(x))]
    return [np.concatenate([r[k] for r in per_image]) for k in range(len(per_image[0]))]


def reference_outputs(q: QGraph, x: np.ndarray) -> list[np.ndarray]:
    """The golden model's dequantized outputs [N, C*H*W] for float images x."""
    (inp,) = q.inputs
    outs = [[] for _ in q.outputs]
    for image in x:
        qx = reference.quantize_tensor(image, q.tensors[inp].scale)
        values = reference.run(q, {inp: qx})
        for k, o in enumerate(q.outputs):
            outs[k].append(reference.dequantize_tensor(values[o], q.tensors[o].scale).ravel())
    return [np.stack(o) for o in outs]


def depth(q: QGraph) -> int:
    """Requantizing ops on the longest path from the input to an output."""
    level = {name: 0 for name in q.inputs}
    for op in q.ops:
        step = int(isinstance(op, (QConv, QAdd)) or
                   (isinstance(op, QPool) and op.kind.name != "MAX"))
        step += int(getattr(op, "lut", None) is not None)
        level[op.output] = max(level[i] for i in op.inputs) + step
    return max(level[o] for o in q.outputs)


def check_close(q: QGraph, x: np.ndarray, floats: list[np.ndarray]) -> float:
    """Assert the bound of this module's docstring; returns the worst error in output steps."""
    worst = 0.0
    d = depth(q)
    for got, want in zip(reference_outputs(q, x), floats):
        want = want.reshape(len(want), -1)
        step = np.abs(want).max() / 127
        err = np.abs(got - want).max() / step
        assert err <= 2 * (d + 1), \
            f"error {err:.2f} steps of {step:.3g} exceeds {2 * (d + 1)} (depth {d})"
        worst = max(worst, err)
    return worst
