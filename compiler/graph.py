"""The float graph IR: what the front ends produce and the passes rewrite.

A `Graph` is a list of `Node`s in topological order over named `Tensor`s with static shapes
(ONNX layout, batch fixed at 1: NCHW feature maps, [1, F] after a flatten or a fully connected
layer). A node's `inputs` are only the activation tensors it reads; its constant operands
(weights, biases, batch-norm statistics, an added constant) are float NumPy arrays in
`weights`, so passes rewrite parameters without chasing initializers. Attributes are normalised
by the importer: pads are (top, left, bottom, right) with `auto_pad` resolved, kernels and
strides are (h, w) pairs, axes are non-negative.

A node may carry a fused elementwise `activation` (set by passes/fuse_activation.py), applied
to its result; `attrs["preact_scale"]` then keeps a scale a pre-quantized model gave the value
before the activation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["OpKind", "ELEMENTWISE", "Activation", "Tensor", "Node", "Graph", "run_float"]


class OpKind(enum.Enum):
    """Operator kinds of the IR; the value is the ONNX op type it comes from."""
    CONV = "Conv"
    GEMM = "Gemm"                    #: y = x @ weight.T + bias (MatMul+Add lands here too)
    ADD = "Add"                      #: two activations, or one activation and `weights["constant"]`
    BATCHNORM = "BatchNormalization"
    RELU = "Relu"
    LEAKY_RELU = "LeakyRelu"
    SIGMOID = "Sigmoid"
    TANH = "Tanh"
    CLIP = "Clip"
    MAXPOOL = "MaxPool"
    AVGPOOL = "AveragePool"
    GLOBAL_AVGPOOL = "GlobalAveragePool"
    PAD = "Pad"                      #: constant zero padding of H and W: attrs["pads"]
    FLATTEN = "Flatten"
    RESHAPE = "Reshape"
    CONCAT = "Concat"
    DROPOUT = "Dropout"
    IDENTITY = "Identity"
    SOFTMAX = "Softmax"
    LRN = "LRN"


def _leaky_relu(x: np.ndarray, attrs: dict) -> np.ndarray:
    return np.where(x >= 0, x, x * attrs.get("alpha", 0.01))


def _clip(x: np.ndarray, attrs: dict) -> np.ndarray:
    return np.clip(x, attrs.get("min", -np.inf), attrs.get("max", np.inf))


#: Elementwise functions (float, any shape): what a fused activation or a LUT computes.
ELEMENTWISE = {
    OpKind.RELU: lambda x, attrs: np.maximum(x, 0),
    OpKind.LEAKY_RELU: _leaky_relu,
    OpKind.SIGMOID: lambda x, attrs: 1.0 / (1.0 + np.exp(-x)),
    OpKind.TANH: lambda x, attrs: np.tanh(x),
    OpKind.CLIP: _clip,
}


@dataclass(frozen=True)
class Activation:
    """An elementwise function fused into the node that produces its input."""
    kind: OpKind
    attrs: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ELEMENTWISE:
            raise ValueError(f"activation kind must be one of "
                             f"{', '.join(k.value for k in ELEMENTWISE)}, not {self.kind}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ELEMENTWISE[self.kind](x, dict(self.attrs))


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    scale: float | None = None   #: carried by a pre-quantized model (QuantizeLinear), else None


@dataclass
class Node:
    name: str
    kind: OpKind
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    activation: Activation | None = None

    @property
    def op_type(self) -> str:
        """The ONNX op type, plus the fused activation (`Conv+Relu`): for messages."""
        base = self.attrs.get("op_type", self.kind.value)
        return base if self.activation is None else f"{base}+{self.activation.kind.value}"


@dataclass
class Graph:
    """Nodes in topological order; `inputs` is the one NCHW network input."""
    nodes: list[Node]
    tensors: dict[str, Tensor]
    inputs: list[str]
    outputs: list[str]
    name: str = "network"

    def producer(self, tensor: str) -> Node | None:
        return next((n for n in self.nodes if tensor in n.outputs), None)

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def sole_consumer(self, tensor: str) -> Node | None:
        """The only reader of `tensor` when it has exactly one and is not a graph output."""
        users = self.consumers(tensor)
        if len(users) != 1 or tensor in self.outputs or users[0].inputs.count(tensor) != 1:
            return None
        return users[0]

    def rename(self, old: str, new: str) -> None:
        """Make every reader of tensor `old` (nodes and graph outputs) read `new` instead."""
        for n in self.nodes:
            n.inputs = [new if t == old else t for t in n.inputs]
        self.outputs = [new if t == old else t for t in self.outputs]

    def prune_tensors(self) -> None:
        """Forget tensors that no node, input or output mentions any more."""
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}


def run_float(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """The graph's outputs for a float32 NCHW batch `x`, computed in NumPy (float64 inside);
    see compiler/float_exec.py."""
    from .float_exec import run_float as run
    return run(graph, x)
