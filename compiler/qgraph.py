"""The quantized graph: the contract between quantization and code generation.

A `QGraph` is what the front end, the passes and quantization produce and what tiling and code
generation consume; `compiler/reference.py` executes it in NumPy as the golden model. Every
value is an integer parameter the hardware uses directly, and the arithmetic of each op is the
hardware's (hw/arith.py):

- `QConv`: y[co] = act(saturate8(round_shift((sum(x * w) + bias[co]) * mult[co], shift[co])))
  with symmetric int8 x and w, zero padding, the accumulator wrapping at the config's acc_bits.
  Fully connected layers are QConvs whose kernel covers the whole input.
- `QPool`: r = max over in-tile taps (-128 for none) or the sum of taps (outside taps count 0);
  y = saturate8(round_shift(r * mult, shift)). GLOBAL_AVG sums the whole plane.
- `QAdd`: y = act(saturate8(round_shift(a * mult_a + b * mult_b, shift))).
- `QConcat`: channels of the inputs in order; code generation makes it free by placing the
  inputs at channel offsets of one DRAM tensor.
- `QHost`: an op the accelerator does not run (softmax, LRN); it runs on the host in float on
  dequantized values and is requantized with its output tensor's scale (see `host_fallback`).

Tensors are NCHW with N = 1, int8, real value = scale * q (symmetric, no zero point).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hw.isa import Activation, PoolKind

__all__ = ["QTensor", "QConv", "QPool", "QAdd", "QConcat", "QHost", "QOp", "QGraph"]


@dataclass(frozen=True)
class QTensor:
    name: str
    shape: tuple[int, int, int]   #: (C, H, W)
    scale: float


@dataclass(frozen=True, eq=False)
class QConv:
    name: str
    input: str
    output: str
    weight: np.ndarray        #: int8 [Cout, Cin, K, K]
    bias: np.ndarray          #: int32 [Cout]
    mult: np.ndarray          #: int16 [Cout]
    shift: np.ndarray         #: uint8 [Cout], 0..63
    stride: int = 1
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)   #: top, left, bottom, right
    activation: Activation = Activation.NONE
    lut: np.ndarray | None = None                    #: int8 [256] when activation is LUT

    @property
    def kernel(self) -> int:
        return int(self.weight.shape[-1])

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True, eq=False)
class QPool:
    name: str
    input: str
    output: str
    kind: PoolKind
    kernel: int = 0
    stride: int = 0
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    mult: int = 1
    shift: int = 0

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True, eq=False)
class QAdd:
    name: str
    a: str
    b: str
    output: str
    mult_a: int
    mult_b: int
    shift: int
    activation: Activation = Activation.NONE
    lut: np.ndarray | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.a, self.b)


@dataclass(frozen=True, eq=False)
class QConcat:
    name: str
    inputs: tuple[str, ...]
    output: str


@dataclass(frozen=True, eq=False)
class QHost:
    name: str
    op_type: str
    inputs: tuple[str, ...]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)


QOp = QConv | QPool | QAdd | QConcat | QHost


@dataclass
class QGraph:
    """Ops in a topological order, the tensors they read and write, the graph's inputs and
    outputs by name."""
    tensors: dict[str, QTensor]
    ops: list[QOp]
    inputs: list[str]
    outputs: list[str]
    name: str = "network"
