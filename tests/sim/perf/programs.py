"""Seeded programs for the cycle-model tests: hand-written DMA runs and random compiled
layers and small networks (tiny unless told otherwise)."""

from __future__ import annotations

import numpy as np

from compiler.compile import compile_qgraph
from hw.config import AcceleratorConfig
from hw.isa import Activation, Buffer, End, Load, PoolKind, Store
from hw.program import Program
from tests.compiler.codegen_util import GraphBuilder

__all__ = ["raw_program", "dma_program", "random_layer", "random_network", "stem_conv"]


def raw_program(config: AcceleratorConfig, instructions: list) -> Program:
    """Hand-written instructions (END appended) placed at 64 KiB."""
    return Program(config=config, instructions=[*instructions, End()], segments=[], inputs=[],
                   outputs=[], program_address=1 << 16, layers=[], meta={})


def dma_program(config: AcceleratorConfig, rng: np.random.Generator) -> Program:
    """Independent LOADs and STOREs of random strided shapes, some crossing 4 KiB pages."""
    wb = config.word_bytes
    out = []
    for _ in range(int(rng.integers(2, 7))):
        size0, count1, count2 = (int(rng.integers(1, 40)), int(rng.integers(1, 4)),
                                 int(rng.integers(1, 3)))
        stride1 = wb * size0 + wb * int(rng.integers(0, 300))
        stride2 = stride1 * count1 + wb * int(rng.integers(0, 9))
        addr = wb * int(rng.integers(0, 2000))
        fields = dict(dram_addr=addr, size0=size0, count1=count1, stride1=stride1,
                      count2=count2, stride2=stride2)
        if rng.integers(0, 3):
            out.append(Load(buffer=Buffer.IBUF, buf_addr=0, **fields))
        else:
            out.append(Store(buffer=Buffer.OBUF, buf_addr=0, **{**fields,
                                                                 "dram_addr": addr + (1 << 20)}))
    return raw_program(config, out)


def _inputs(graph, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {n: rng.integers(-128, 128, graph.tensors[n].shape).astype(np.int8)
            for n in graph.inputs}


def random_layer(seed: int, config: AcceleratorConfig, kind: str
                 ) -> tuple[Program, dict[str, np.ndarray]]:
    """One layer: conv (kernel 1-5, stride 1-2, padding, channels not multiples of the
    lanes, multi-pass reductions when K*K*groups exceeds the contexts), max/avg pool, global
    average pool or add."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder(f"{kind}{seed}")
    c, h, w = (int(v) for v in rng.integers((1, 3, 3), (11, 10, 10)))
    x = g.input("x", (c, h, w))
    if kind == "conv":
        k = min(int(rng.integers(1, 6)), h, w)
        p = int(rng.integers(0, k)) if k > 1 else 0
        y = g.conv(rng, x, int(rng.integers(1, 11)), k, stride=int(rng.integers(1, 3)),
                   pads=(p, p, p, p), activation=(Activation.NONE, Activation.RELU)[seed % 2])
    elif kind == "pool":
        k = min(int(rng.integers(2, 4)), h, w)
        y = g.pool(x, (PoolKind.MAX, PoolKind.AVG)[seed % 2], k, int(rng.integers(1, 3)))
    elif kind == "gap":
        y = g.pool(x, PoolKind.GLOBAL_AVG)
    elif kind == "add":
        y = g.add(rng, x, g.input("x2", (c, h, w)))
    else:
        raise ValueError(f"kind must be conv, pool, gap or add, not {kind!r}")
    graph = g.graph([y])
    return compile_qgraph(graph, config), _inputs(graph, rng)


def random_network(seed: int, config: AcceleratorConfig, *, lut: bool = False
                   ) -> tuple[Program, dict[str, np.ndarray]]:
    """conv 3x3 + ReLU -> max pool -> conv 1x1 and a residual add -> global average pool.
    With `lut`, the 1x1 conv and the add use table activations: their table loads overlap
    the layers before them (post-processing and the element-wise unit wait for the writes)."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder(f"net{seed}")
    c = int(rng.integers(2, 7))
    act = Activation.LUT if lut else Activation.RELU
    x = g.input("x", (int(rng.integers(1, 5)), 8, 8))
    a = g.conv(rng, x, c, 3, pads=(1, 1, 1, 1), activation=Activation.RELU)
    p = g.pool(a, PoolKind.MAX, 2, 2)
    b = g.conv(rng, p, c, 1, activation=act if lut else Activation.NONE)
    s = g.add(rng, b, p, act)
    y = g.pool(s, PoolKind.GLOBAL_AVG)
    graph = g.graph([y])
    return compile_qgraph(graph, config), _inputs(graph, rng)


def stem_conv(seed: int, config: AcceleratorConfig, size: int = 60
              ) -> tuple[Program, dict[str, np.ndarray]]:
    """A 7x7 stride-2 convolution of a 3-channel image (ResNet's first layer): tall tiles
    (more input rows than the line buffer holds) and four passes per tile, the last with a
    single chunk, whose input can only stream in as the previous pass frees line-buffer rows."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder(f"stem{seed}")
    x = g.input("x", (3, size, size))
    y = g.conv(rng, x, 20, 7, stride=2, pads=(3, 3, 3, 3), activation=Activation.RELU)
    graph = g.graph([y])
    return compile_qgraph(graph, config), _inputs(graph, rng)
