"""The golden model: a quantized network executed layer by layer in plain NumPy.

Every backend (functional ISA model, Amaranth RTL, Verilator, cocotb) must reproduce these int8
tensors exactly. The arithmetic rules come from hw/arith.py; the loops here are deliberately the
textbook ones (im2col convolution, sliding-window pooling) and share nothing with the tiling.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hw.arith import activate, requantize, round_shift, saturate8, wrap_acc
from hw.isa import PoolKind

from .qgraph import QAdd, QConcat, QConv, QGraph, QHost, QPool

__all__ = ["run", "conv", "pool", "add", "quantize_tensor", "dequantize_tensor", "HOST_OPS"]


def quantize_tensor(x: np.ndarray, scale: float) -> np.ndarray:
    """Float to symmetric int8: round half to even, saturate."""
    return np.clip(np.rint(np.asarray(x, np.float64) / scale), -128, 127).astype(np.int8)


def dequantize_tensor(q: np.ndarray, scale: float) -> np.ndarray:
    return q.astype(np.float32) * np.float32(scale)


def _padded(x: np.ndarray, pads: tuple[int, int, int, int], fill: int) -> np.ndarray:
    top, left, bottom, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right)), constant_values=fill)


def _windows(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """[C, OH, OW, K, K] sliding windows of a padded [C, H, W] array."""
    c, h, w = x.shape
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    view = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(1, 2))
    return view[:, :oh * stride:stride, :ow * stride:stride][:, :oh, :ow]


def conv(op: QConv, x: np.ndarray, *, acc_bits: int = 32) -> np.ndarray:
    k = op.kernel
    win = _windows(_padded(x.astype(np.int64), op.pads, 0), k, op.stride)   # [C, OH, OW, K, K]
    acc = np.einsum("chwyx,ocyx->ohw", win, op.weight.astype(np.int64))
    acc = wrap_acc(acc, acc_bits)
    y = requantize(acc, op.bias[:, None, None], op.mult[:, None, None],
                   op.shift[:, None, None].astype(np.int64))
    return activate(y, op.activation, _lut(op.lut))


def pool(op: QPool, x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    if op.kind is PoolKind.GLOBAL_AVG:
        r = x.sum(axis=(1, 2), keepdims=True)
    elif op.kind is PoolKind.MAX:
        # Padding never wins a max; a window of padding only gives -128.
        r = _windows(_padded(x, op.pads, -128), op.kernel, op.stride).max(axis=(3, 4))
    else:
        r = _windows(_padded(x, op.pads, 0), op.kernel, op.stride).sum(axis=(3, 4))
    return saturate8(round_shift(r * op.mult, op.shift))


def add(op: QAdd, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    t = a.astype(np.int64) * op.mult_a + b.astype(np.int64) * op.mult_b
    return activate(saturate8(round_shift(t, op.shift)), op.activation, _lut(op.lut))


def _lut(lut: np.ndarray | None) -> np.ndarray:
    return np.zeros(256, np.int8) if lut is None else np.asarray(lut, np.int8)


def _softmax(x: np.ndarray, attrs: dict) -> np.ndarray:
    axis = 0  # channel axis of a [C, H, W] tensor
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _lrn(x: np.ndarray, attrs: dict) -> np.ndarray:
    size = int(attrs["size"])
    alpha, beta, bias = (float(attrs.get(k, d)) for k, d in
                         (("alpha", 1e-4), ("beta", 0.75), ("bias", 1.0)))
    sq = np.pad(x.astype(np.float64) ** 2, (((size - 1) // 2, size // 2), (0, 0), (0, 0)))
    window = np.lib.stride_tricks.sliding_window_view(sq, size, axis=0).sum(axis=-1)
    return (x / (bias + alpha / size * window) ** beta).astype(np.float32)


#: Ops that run on the host (in float on dequantized values) with --host-fallback.
HOST_OPS: dict[str, Callable[[np.ndarray, dict], np.ndarray]] = {
    "Softmax": _softmax,
    "LRN": _lrn,
}


def run(graph: QGraph, inputs: dict[str, np.ndarray], *, acc_bits: int = 32
        ) -> dict[str, np.ndarray]:
    """Execute the graph on int8 [C, H, W] inputs; returns every tensor by name."""
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        x = np.asarray(inputs[name])
        want = graph.tensors[name].shape
        if x.shape != want or x.dtype != np.int8:
            raise ValueError(f"input {name!r} must be int8 {want}, not {x.dtype} {x.shape}")
        values[name] = x
    for op in graph.ops:
        if isinstance(op, QConv):
            y = conv(op, values[op.input], acc_bits=acc_bits)
        elif isinstance(op, QPool):
            y = pool(op, values[op.input])
        elif isinstance(op, QAdd):
            y = add(op, values[op.a], values[op.b])
        elif isinstance(op, QConcat):
            y = np.concatenate([values[i] for i in op.inputs], axis=0)
        elif isinstance(op, QHost):
            (src,) = op.inputs
            real = dequantize_tensor(values[src], graph.tensors[src].scale)
            y = quantize_tensor(HOST_OPS[op.op_type](real, op.attrs),
                                graph.tensors[op.output].scale)
        else:
            raise TypeError(f"unknown op {op!r}")
        want = graph.tensors[op.output].shape
        if y.shape != want:
            raise ValueError(f"{op.name}: produced {y.shape}, graph says {want}")
        values[op.output] = y
    return values
