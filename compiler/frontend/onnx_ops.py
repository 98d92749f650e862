"""ONNX node -> IR node, one translation function per supported ONNX op type.

Each function gets an `OnnxNode` view (name, op type, attributes, each input as an activation
name or a constant array) plus the shapes known so far, and returns the IR `Node`, with
constant operands moved into `weights` and attributes normalised (pads as (top, left, bottom,
right) with `auto_pad` resolved, kernels and strides as (h, w), axes non-negative).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CompileError
from ..graph import Node, OpKind

__all__ = ["OnnxNode", "TRANSLATORS", "translate"]


@dataclass
class OnnxNode:
    name: str
    op_type: str
    opset: int
    attrs: dict[str, Any]
    inputs: list[str]                     #: names ("" for an omitted optional input)
    consts: list[np.ndarray | None]       #: the constant value of each input, or None
    outputs: list[str]
    shapes: list[tuple[int, ...] | None]  #: the shape of each activation input

    def fail(self, reason: str) -> CompileError:
        return CompileError(reason, node=self.name, op_type=self.op_type)

    def const(self, i: int, what: str) -> np.ndarray:
        if i >= len(self.inputs) or self.consts[i] is None:
            name = self.inputs[i] if i < len(self.inputs) else "(missing)"
            raise self.fail(f"{what} (input {i}, {name!r}) must be a constant initializer; "
                            "computed weights are not supported")
        return np.asarray(self.consts[i], np.float64)

    def optional_const(self, i: int) -> np.ndarray | None:
        return None if i >= len(self.inputs) or not self.inputs[i] else self.const(i, "operand")

    def activation(self, i: int = 0) -> str:
        if i >= len(self.inputs) or self.consts[i] is not None or not self.inputs[i]:
            raise self.fail(f"input {i} must be an activation tensor")
        return self.inputs[i]

    def shape(self, i: int = 0) -> tuple[int, ...]:
        return self.shapes[i]

    def node(self, kind: OpKind, inputs: list[str], attrs: dict | None = None,
             weights: dict | None = None) -> Node:
        attrs = dict(attrs or {})
        if kind.value != self.op_type:
            attrs["op_type"] = self.op_type
        return Node(self.name, kind, inputs, self.outputs[:1], attrs, weights or {})


def _pair(n: OnnxNode, key: str, default: int) -> tuple[int, int]:
    v = tuple(int(x) for x in n.attrs.get(key, (default, default)))
    if len(v) != 2:
        raise n.fail(f"{key} {list(v)}: only 2-D (NCHW) operations are supported")
    return v


def _pads(n: OnnxNode, kernel: tuple[int, int], strides: tuple[int, int],
          dilations: tuple[int, int] = (1, 1)) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), resolving auto_pad against the input shape."""
    auto = n.attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        pads = tuple(int(p) for p in n.attrs.get("pads", (0, 0, 0, 0)))
        if len(pads) != 4 or min(pads) < 0:
            raise n.fail(f"pads {list(pads)} must be 4 non-negative values for a 2-D op")
        return pads
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise n.fail(f"auto_pad {auto!r} is not NOTSET, VALID, SAME_UPPER or SAME_LOWER")
    begin, end = [], []
    for size, k, s, d in zip(n.shape()[2:], kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return (begin[0], begin[1], end[0], end[1])


def _conv(n: OnnxNode) -> Node:
    x = n.activation(0)
    w = n.const(1, "weight")
    if w.ndim != 4 or len(n.shape()) != 4:
        raise n.fail(f"only 2-D convolutions on NCHW inputs are supported (weight "
                     f"{list(w.shape)}, input {list(n.shape())})")
    b = n.optional_const(2)
    strides, dil = _pair(n, "strides", 1), _pair(n, "dilations", 1)
    kernel = tuple(w.shape[2:])
    attrs = {"strides": strides, "dilations": dil, "group": int(n.attrs.get("group", 1)),
             "pads": _pads(n, kernel, strides, dil)}
    bias = np.zeros(w.shape[0]) if b is None else b.reshape(-1)
    if bias.shape != (w.shape[0],):
        raise n.fail(f"bias {list(b.shape)} does not match {w.shape[0]} output channels")
    return n.node(OpKind.CONV, [x], attrs, {"weight": w, "bias": bias})


def _gemm(n: OnnxNode) -> Node:
    if n.attrs.get("transA", 0):
        raise n.fail("transA=1 is not supported (the activation must be the row operand)")
    x = n.activation(0)
    if len(n.shape()) != 2:
        raise n.fail(f"needs a 2-D [1, features] input, got {list(n.shape())}")
    b = n.const(1, "weight")
    w = (b if n.attrs.get("transB", 0) else b.T) * float(n.attrs.get("alpha", 1.0))
    c = n.optional_const(2)
    bias = np.zeros(w.shape[0]) if c is None else float(n.attrs.get("beta", 1.0)) * c
    try:
        bias = np.broadcast_to(bias, (1, w.shape[0])).reshape(-1)
    except ValueError:
        raise n.fail(f"bias {list(np.shape(c))} does not broadcast to {w.shape[0]} "
                     "outputs") from None
    return n.node(OpKind.GEMM, [x], {}, {"weight": np.ascontiguousarray(w), "bias": bias})


def _matmul(n: OnnxNode) -> Node:
    x = n.activation(0)
    b = n.const(1, "weight")
    if len(n.shape()) != 2 or b.ndim != 2:
        raise n.fail(f"only [1, F] x [F, K] products are supported, got {list(n.shape())} x "
                     f"{list(b.shape)}")
    return n.node(OpKind.GEMM, [x], {}, {"weight": np.ascontiguousarray(b.T),
                                         "bias": np.zeros(b.shape[1])})


def _add(n: OnnxNode) -> Node:
    if len(n.inputs) != 2:
        raise n.fail("needs two operands")
    consts = [c is not None for c in n.consts]
    if not any(consts):
        return n.node(OpKind.ADD, [n.inputs[0], n.inputs[1]])
    i = consts.index(False)
    c = n.const(1 - i, "constant")
    try:
        np.broadcast_shapes(c.shape, n.shape(i))
    except ValueError:
        raise n.fail(f"constant {list(c.shape)} does not broadcast to {list(n.shape(i))}") from None
    if np.broadcast_shapes(c.shape, n.shape(i)) != n.shape(i):
        raise n.fail(f"constant {list(c.shape)} would enlarge the input {list(n.shape(i))}")
    return n.node(OpKind.ADD, [n.inputs[i]], {}, {"constant": c})


def _batchnorm(n: OnnxNode) -> Node:
    if n.attrs.get("training_mode", 0) or len([o for o in n.outputs if o]) > 1:
        raise n.fail("training-mode batch normalization (running statistics as outputs) is "
                     "not supported; export the model in eval mode")
    names = ("scale", "bias", "mean", "var")
    weights = {k: n.const(i + 1, k).reshape(-1) for i, k in enumerate(names)}
    return n.node(OpKind.BATCHNORM, [n.activation(0)],
                  {"epsilon": float(n.attrs.get("epsilon", 1e-5))}, weights)


def _pool(kind: OpKind) -> Callable[[OnnxNode], Node]:
    def translate_pool(n: OnnxNode) -> Node:
        x = n.activation(0)
        if len(n.shape()) != 4:
            raise n.fail(f"needs a 4-D NCHW input, got {list(n.shape())}")
        if any(n.outputs[1:]):
            raise n.fail("the Indices output is not supported")
        if _pair(n, "dilations", 1) != (1, 1):
            raise n.fail("dilated pooling is not supported")
        kernel, strides = _pair(n, "kernel_shape", 1), _pair(n, "strides", 1)
        attrs = {"kernel": kernel, "strides": strides, "pads": _pads(n, kernel, strides),
                 "ceil_mode": int(n.attrs.get("ceil_mode", 0)),
                 "count_include_pad": int(n.attrs.get("count_include_pad", 0))}
        return n.node(kind, [x], attrs)
    return translate_pool


def _pad(n: OnnxNode) -> Node:
    mode = n.attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = n.attrs.get("pads")
    if pads is None:
        pads = n.const(1, "pads")
    value = n.attrs.get("value", 0.0)
    if len(n.inputs) > 2 and n.inputs[2]:
        value = float(n.const(2, "constant_value"))
    if len(n.inputs) > 3 and n.inputs[3]:
        raise n.fail("padding selected axes (the axes input) is not supported")
    pads = [int(p) for p in pads]
    if mode != "constant" or value != 0 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) \
            or min(pads) < 0:
        raise n.fail(f"only zero padding of H and W is supported, not mode {mode!r} value "
                     f"{value} pads {pads}")
    return n.node(OpKind.PAD, [n.activation(0)], {"pads": (pads[2], pads[3], pads[6], pads[7])})


def _global_max(n: OnnxNode) -> Node:
    h, w = n.shape()[2:]
    return n.node(OpKind.MAXPOOL, [n.activation(0)],
                  {"kernel": (h, w), "strides": (1, 1), "pads": (0, 0, 0, 0)})


def _reduce_mean(n: OnnxNode) -> Node:
    axes = n.attrs.get("axes")
    if axes is None and len(n.inputs) > 1 and n.inputs[1]:
        axes = n.const(1, "axes")
    rank = len(n.shape())
    axes = sorted(int(a) % rank for a in (axes if axes is not None else range(rank)))
    if rank != 4 or axes != [2, 3]:
        raise n.fail(f"only a mean over the spatial axes [2, 3] of a 4-D tensor is supported "
                     f"(global average pooling), not axes {axes} of {list(n.shape())}")
    return n.node(OpKind.GLOBAL_AVGPOOL, [n.activation(0)],
                  {"keepdims": int(n.attrs.get("keepdims", 1))})


def _reshape_to(n: OnnxNode, target: list[int]) -> Node:
    return n.node(OpKind.RESHAPE, [n.activation(0)], {"shape": tuple(int(d) for d in target)})


def _reshape(n: OnnxNode) -> Node:
    spec = [int(d) for d in n.const(1, "shape")]
    src = n.shape()
    target = [src[i] if d == 0 and not n.attrs.get("allowzero", 0) else d
              for i, d in enumerate(spec)]
    if target.count(-1) == 1:
        known = math.prod(d for d in target if d != -1)
        target[target.index(-1)] = math.prod(src) // max(known, 1)
    if min(target) < 0 or math.prod(target) != math.prod(src):
        raise n.fail(f"cannot reshape {list(src)} to {spec}")
    return _reshape_to(n, target)


def _squeeze(n: OnnxNode) -> Node:
    src = n.shape()
    axes = n.attrs.get("axes")
    if axes is None and len(n.inputs) > 1 and n.inputs[1]:
        axes = n.const(1, "axes")
    if n.op_type == "Squeeze":
        axes = {int(a) % len(src) for a in axes} if axes is not None else \
            {i for i, d in enumerate(src) if d == 1}
        return _reshape_to(n, [d for i, d in enumerate(src) if i not in axes])
    rank = len(src) + len(axes)
    axes = {int(a) % rank for a in axes}
    it = iter(src)
    return _reshape_to(n, [1 if i in axes else next(it) for i in range(rank)])


def _flatten(n: OnnxNode) -> Node:
    axis = int(n.attrs.get("axis", 1)) % max(len(n.shape()), 1)
    if axis > 1:
        raise n.fail(f"flatten at axis {axis} is not supported (only axis 1: [1, C*H*W])")
    return n.node(OpKind.FLATTEN, [n.activation(0)], {"axis": 1})


def _concat(n: OnnxNode) -> Node:
    if any(c is not None for c in n.consts):
        raise n.fail("concatenating a constant is not supported")
    axis = int(n.attrs["axis"]) % len(n.shape(0))
    return n.node(OpKind.CONCAT, list(n.inputs), {"axis": axis})


def _softmax(n: OnnxNode) -> Node:
    default = 1 if n.opset < 13 else -1
    axis = int(n.attrs.get("axis", default)) % len(n.shape())
    return n.node(OpKind.SOFTMAX, [n.activation(0)], {"axis": axis})


def _lrn(n: OnnxNode) -> Node:
    attrs = {"size": int(n.attrs["size"]), "alpha": float(n.attrs.get("alpha", 1e-4)),
             "beta": float(n.attrs.get("beta", 0.75)), "bias": float(n.attrs.get("bias", 1.0))}
    return n.node(OpKind.LRN, [n.activation(0)], attrs)


def _clip(n: OnnxNode) -> Node:
    lo, hi = n.attrs.get("min"), n.attrs.get("max")
    if lo is None and len(n.inputs) > 1 and n.inputs[1]:
        lo = float(n.const(1, "min"))
    if hi is None and len(n.inputs) > 2 and n.inputs[2]:
        hi = float(n.const(2, "max"))
    attrs = {k: float(v) for k, v in (("min", lo), ("max", hi)) if v is not None}
    return n.node(OpKind.CLIP, [n.activation(0)], attrs)


def _dropout(n: OnnxNode) -> Node:
    if any(n.outputs[1:]):
        raise n.fail("the mask output of Dropout is not supported")
    return n.node(OpKind.DROPOUT, [n.activation(0)])


def _unary(kind: OpKind, **defaults: float) -> Callable[[OnnxNode], Node]:
    def translate_unary(n: OnnxNode) -> Node:
        attrs = {k: float(n.attrs.get(k, v)) for k, v in defaults.items()}
        return n.node(kind, [n.activation(0)], attrs)
    return translate_unary


TRANSLATORS: dict[str, Callable[[OnnxNode], Node]] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add,
    "BatchNormalization": _batchnorm,
    "Relu": _unary(OpKind.RELU),
    "LeakyRelu": _unary(OpKind.LEAKY_RELU, alpha=0.01),
    "Sigmoid": _unary(OpKind.SIGMOID),
    "Tanh": _unary(OpKind.TANH),
    "Clip": _clip,
    "MaxPool": _pool(OpKind.MAXPOOL),
    "AveragePool": _pool(OpKind.AVGPOOL),
    "GlobalAveragePool": _unary(OpKind.GLOBAL_AVGPOOL),
    "GlobalMaxPool": _global_max,
    "ReduceMean": _reduce_mean,
    "Flatten": _flatten,
    "Pad": _pad,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _squeeze,
    "Concat": _concat,
    "Dropout": _dropout,
    "Identity": _unary(OpKind.IDENTITY),
    "Softmax": _softmax,
    "LRN": _lrn,
}


def translate(n: OnnxNode) -> Node:
    fn = TRANSLATORS.get(n.op_type)
    if fn is None:
        raise n.fail(f"unsupported operator {n.op_type!r}; supported: "
                     f"{', '.join(sorted(TRANSLATORS))} (plus constant subgraphs and "
                     "QuantizeLinear/DequantizeLinear pairs)")
    return fn(n)
