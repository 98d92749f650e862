"""Shared helpers of the code generation tests: random quantized layers built directly as
QGraphs, and compile -> functional machine -> compare with the golden reference."""

from __future__ import annotations

import math

import numpy as np

from compiler import reference
from compiler.compile import compile_qgraph
from compiler.qgraph import QAdd, QConcat, QConv, QGraph, QPool, QTensor
from hw.config import AcceleratorConfig
from hw.isa import Activation, PoolKind
from hw.layout import read_tensor, write_tensor
from hw.program import Program
from sim.functional import FunctionalMachine, RunStats

__all__ = ["conv_op", "pool_op", "add_op", "random_lut", "out_size", "GraphBuilder",
           "check_graph"]


def out_size(size: int, kernel: int, stride: int, pad_a: int, pad_b: int) -> int:
    return (size + pad_a + pad_b - kernel) // stride + 1


def random_lut(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(-128, 128, 256).astype(np.int8)


def _shift_for(std_acc: float) -> int:
    # mult ~ 2**14.5: put the requantized standard deviation near 40 (well inside int8).
    return int(np.clip(math.ceil(math.log2(max(std_acc, 1.0) * 2 ** 14.5 / 40)), 0, 63))


def conv_op(rng: np.random.Generator, name: str, src: str, dst: str, cin: int, cout: int,
            kernel: int, *, stride: int = 1, pads: tuple[int, int, int, int] = (0, 0, 0, 0),
            activation: Activation = Activation.NONE) -> QConv:
    weight = rng.integers(-128, 128, (cout, cin, kernel, kernel)).astype(np.int8)
    std_acc = math.sqrt(cin * kernel * kernel) * 74 * 74
    return QConv(
        name=name, input=src, output=dst, weight=weight,
        bias=rng.integers(-int(std_acc), int(std_acc) + 1, cout).astype(np.int32),
        mult=rng.integers(1 << 14, 1 << 15, cout).astype(np.int16),
        shift=np.full(cout, _shift_for(std_acc), np.uint8), stride=stride, pads=pads,
        activation=activation, lut=random_lut(rng) if activation is Activation.LUT else None)


def pool_op(name: str, src: str, dst: str, kind: PoolKind, kernel: int = 0, stride: int = 0,
            pads: tuple[int, int, int, int] = (0, 0, 0, 0), *, taps: int = 1) -> QPool:
    if kind is PoolKind.MAX:
        return QPool(name=name, input=src, output=dst, kind=kind, kernel=kernel, stride=stride,
                     pads=pads, mult=1, shift=0)
    shift = 14 + math.ceil(math.log2(taps))     # mult / 2**shift ~ 1 / taps, mult < 2**15
    return QPool(name=name, input=src, output=dst, kind=kind, kernel=kernel, stride=stride,
                 pads=pads, mult=round(2 ** shift / taps) if taps > 1 else 1 << 14,
                 shift=shift if taps > 1 else 14)


def add_op(rng: np.random.Generator, name: str, a: str, b: str, dst: str,
           activation: Activation = Activation.NONE) -> QAdd:
    return QAdd(name=name, a=a, b=b, output=dst, mult_a=int(rng.integers(1 << 13, 1 << 14)),
                mult_b=int(rng.integers(1 << 13, 1 << 14)), shift=14, activation=activation,
                lut=random_lut(rng) if activation is Activation.LUT else None)


class GraphBuilder:
    """Accumulates tensors and ops of a test network."""

    def __init__(self, name: str = "test") -> None:
        self.tensors: dict[str, QTensor] = {}
        self.ops: list = []
        self.inputs: list[str] = []
        self.name = name

    def tensor(self, name: str, shape: tuple[int, int, int]) -> str:
        self.tensors[name] = QTensor(name, shape, 0.05)
        return name

    def input(self, name: str, shape: tuple[int, int, int]) -> str:
        self.inputs.append(self.tensor(name, shape))
        return name

    def conv(self, rng: np.random.Generator, src: str, cout: int, kernel: int, *,
             stride: int = 1, pads: tuple[int, int, int, int] = (0, 0, 0, 0),
             activation: Activation = Activation.NONE, name: str | None = None) -> str:
        cin, h, w = self.tensors[src].shape
        name = name or f"conv{len(self.ops)}"
        oh = out_size(h, kernel, stride, pads[0], pads[2])
        ow = out_size(w, kernel, stride, pads[1], pads[3])
        dst = self.tensor(f"{name}.out", (cout, oh, ow))
        self.ops.append(conv_op(rng, name, src, dst, cin, cout, kernel, stride=stride,
                                pads=pads, activation=activation))
        return dst

    def pool(self, src: str, kind: PoolKind, kernel: int = 0, stride: int = 0,
             pads: tuple[int, int, int, int] = (0, 0, 0, 0)) -> str:
        c, h, w = self.tensors[src].shape
        name = f"pool{len(self.ops)}"
        if kind is PoolKind.GLOBAL_AVG:
            shape, taps = (c, 1, 1), h * w
        else:
            shape = (c, out_size(h, kernel, stride, pads[0], pads[2]),
                     out_size(w, kernel, stride, pads[1], pads[3]))
            taps = kernel * kernel
        dst = self.tensor(f"{name}.out", shape)
        self.ops.append(pool_op(name, src, dst, kind, kernel, stride, pads, taps=taps))
        return dst

    def add(self, rng: np.random.Generator, a: str, b: str,
            activation: Activation = Activation.NONE) -> str:
        name = f"add{len(self.ops)}"
        dst = self.tensor(f"{name}.out", self.tensors[a].shape)
        self.ops.append(add_op(rng, name, a, b, dst, activation))
        return dst

    def concat(self, *srcs: str) -> str:
        name = f"concat{len(self.ops)}"
        shapes = [self.tensors[s].shape for s in srcs]
        dst = self.tensor(f"{name}.out", (sum(s[0] for s in shapes), *shapes[0][1:]))
        self.ops.append(QConcat(name=name, inputs=tuple(srcs), output=dst))
        return dst

    def graph(self, outputs: list[str]) -> QGraph:
        return QGraph(tensors=dict(self.tensors), ops=list(self.ops), inputs=list(self.inputs),
                      outputs=list(outputs), name=self.name)


def check_graph(graph: QGraph, config: AcceleratorConfig, rng: np.random.Generator, *,
                pack_inputs: bool = False) -> tuple[Program, RunStats]:
    """Compile, run on the functional model, and assert every output equals the reference.

    Input packing (compiler/input_packing.py) is off unless asked for: these tests exercise
    the lowerings on the layers as written (padding, tile edges, strides); packing would turn
    most first convolutions into unpadded 1x1 ones."""
    inputs = {name: rng.integers(-128, 128, graph.tensors[name].shape).astype(np.int8)
              for name in graph.inputs}
    expected = reference.run(graph, inputs, acc_bits=config.acc_bits)
    program = Program.from_bytes(compile_qgraph(graph, config, pack_inputs=pack_inputs)
                                 .to_bytes(), config=config)
    machine = FunctionalMachine(config, program.dram_image())
    for info in program.inputs:
        write_tensor(machine, info, inputs[info.name], config.lanes)
    stats = machine.run(program.instructions)
    for info in program.outputs:
        got = read_tensor(machine, info, config.lanes)
        want = expected[info.name]
        assert got.shape == want.shape
        bad = np.argwhere(got != want)
        assert bad.size == 0, (f"{info.name}: {len(bad)} of {want.size} values differ on "
                               f"{config.name}, first at {bad[0].tolist()}: got "
                               f"{got[tuple(bad[0])]}, want {want[tuple(bad[0])]}")
        # Not all saturated: the test would not see requantization errors otherwise.
        assert np.mean((want == 127) | (want == -128)) < 0.5 or want.size < 4
    return program, stats
