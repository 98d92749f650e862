"""Convolution layer shapes, and random quantized graphs of them for the compiler.

Performance does not depend on the values, so weights and inputs are seeded random int8 and the
requantization keeps outputs inside int8 (mult ~ 2**14.5, shift from the accumulator's spread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compiler.qgraph import QConv, QGraph, QTensor
from hw.isa import Activation

__all__ = ["ConvShape", "conv_chain_graph", "random_inputs"]


@dataclass(frozen=True)
class ConvShape:
    """One convolution: input (channels, height, width), square kernel, stride, equal padding
    on every side."""
    name: str
    in_channels: int
    height: int
    width: int
    kernel: int
    out_channels: int
    stride: int = 1
    pad: int = 0

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def macs(self) -> int:
        return (self.out_channels * self.in_channels * self.kernel ** 2 * self.out_height
                * self.out_width)


def _conv(rng: np.random.Generator, shape: ConvShape, src: str, dst: str) -> QConv:
    weight = rng.integers(-128, 128, (shape.out_channels, shape.in_channels, shape.kernel,
                                      shape.kernel)).astype(np.int8)
    spread = math.sqrt(shape.in_channels * shape.kernel ** 2) * 74 * 74
    shift = int(np.clip(math.ceil(math.log2(max(spread, 1.0) * 2 ** 14.5 / 40)), 0, 63))
    return QConv(
        name=shape.name, input=src, output=dst, weight=weight,
        bias=rng.integers(-int(spread), int(spread) + 1, shape.out_channels).astype(np.int32),
        mult=rng.integers(1 << 14, 1 << 15, shape.out_channels).astype(np.int16),
        shift=np.full(shape.out_channels, shift, np.uint8), stride=shape.stride,
        pads=(shape.pad,) * 4, activation=Activation.RELU)


def conv_chain_graph(shapes: list[ConvShape], *, seed: int = 0, name: str = "bench") -> QGraph:
    """The convolutions one after another (each layer's input is the previous one's output,
    so consecutive shapes must agree), ReLU after each."""
    rng = np.random.default_rng(seed)
    first = shapes[0]
    tensors = {"x": QTensor("x", (first.in_channels, first.height, first.width), 0.05)}
    ops, src = [], "x"
    for shape in shapes:
        have = tensors[src].shape
        if have != (shape.in_channels, shape.height, shape.width):
            raise ValueError(f"layer {shape.name} takes {shape.in_channels}x{shape.height}x"
                             f"{shape.width} but the previous layer gives {have}")
        dst = f"{shape.name}.out"
        tensors[dst] = QTensor(dst, (shape.out_channels, shape.out_height, shape.out_width), 0.05)
        ops.append(_conv(rng, shape, src, dst))
        src = dst
    return QGraph(tensors=tensors, ops=ops, inputs=["x"], outputs=[src], name=name)


def random_inputs(graph: QGraph, *, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.integers(-128, 128, graph.tensors[n].shape).astype(np.int8)
            for n in graph.inputs}
