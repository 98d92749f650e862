"""Post-training int8 quantization: the float IR after the passes -> `QGraph`.

Scheme (docs/compiler.md, "Quantization"):
- activations: per-tensor symmetric int8, real = scale * q, scale = max|x| / 127 over the
  calibration set (compiler/calibrate.py), or the scale a pre-quantized model carries;
- weights: per-output-channel symmetric, s_w[c] = max|w[c]| / 127, q = round(w / s_w) in
  [-127, 127]; s_w[c] is raised when needed so the int32 bias fits (a channel of tiny weights
  and a large bias), and is 1 for an all-zero channel without bias;
- bias: int32 round(b / (s_in * s_w[c]));
- requantization: M[c] = s_in * s_w[c] / s_out as (mult, shift), mult in [2**14, 2**15)
  (compiler/fixed_point.py); with a lookup-table activation s_out is the scale of the table's
  input (calibrated before the activation) and the table maps to the output scale:
  LUT[i] = quantize(f((i - 128) * s_pre), s_out);
- pools: MAX keeps the scale (mult 1, shift 0); AVG keeps the scale, (mult, shift) ~ 1/K^2 with
  padding counted as zeros (count_include_pad=1); GLOBAL_AVG (mult, shift) ~ s_in / (s_out*H*W);
- add: both inputs rescaled to the output scale with one shared shift;
- concat: inputs and output share one scale (calibrate.scale_groups), so it only places data.
Without a calibration set, DEFAULT_CALIBRATION_IMAGES images of seeded standard-normal noise
are used: fine for tests, wrong for a real network (pass real images).
"""

from __future__ import annotations

import copy

import numpy as np

from hw.isa import Activation as HwActivation
from hw.isa import PoolKind

from .calibrate import INT8_MAX, activation_ranges, tensor_scales
from .errors import CompileError
from .fixed_point import multiplier_shift, multipliers_shift, per_channel
from .graph import Graph, Node, OpKind
from .passes import run_pipeline
from .qgraph import QAdd, QConcat, QConv, QGraph, QHost, QOp, QPool, QTensor
from .shapes import pool_out

__all__ = ["DEFAULT_CALIBRATION_IMAGES", "DEFAULT_CALIBRATION_SEED", "default_calibration",
           "quantize", "quantize_weights", "build_lut"]

DEFAULT_CALIBRATION_IMAGES = 8
DEFAULT_CALIBRATION_SEED = 0
_INT32 = (-(1 << 31), (1 << 31) - 1)
_HOST_WHY = {
    OpKind.SOFTMAX: "it divides by a sum of exponentials across channels; the element-wise "
                    "table sees one value at a time",
    OpKind.LRN: "it divides by a power of a sum of squares across channels; the element-wise "
                "table sees one value at a time",
}


def default_calibration(graph: Graph) -> np.ndarray:
    """The calibration set used when none is given: seeded N(0, 1) noise images."""
    shape = graph.tensors[graph.inputs[0]].shape[1:]
    rng = np.random.default_rng(DEFAULT_CALIBRATION_SEED)
    return rng.standard_normal((DEFAULT_CALIBRATION_IMAGES,) + shape).astype(np.float32)


def _check_calibration(graph: Graph, data: np.ndarray) -> np.ndarray:
    name = graph.inputs[0]
    want = graph.tensors[name].shape[1:]
    expected = f"float [N, {', '.join(map(str, want))}] (NCHW, N >= 1) for input {name!r}"
    arr = np.asarray(data)
    if arr.dtype.kind not in "fiu" or arr.ndim != 4 or arr.shape[1:] != want or len(arr) == 0:
        raise CompileError(f"calibration array must be {expected}, not {arr.dtype} "
                           f"{list(arr.shape)}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise CompileError("calibration array contains NaN or infinite values")
    return arr


def quantize_weights(weight: np.ndarray, bias: np.ndarray, s_in: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int8 weight, int32 bias, per-channel weight scale) for a [Cout, ...] weight."""
    flat = weight.reshape(weight.shape[0], -1)
    s_w = np.max(np.abs(flat), axis=1) / INT8_MAX
    s_w = np.maximum(s_w, np.abs(bias) / (s_in * _INT32[1]))
    s_w = np.where(s_w > 0, s_w, 1.0)
    q = np.clip(np.rint(weight / s_w.reshape((-1,) + (1,) * (weight.ndim - 1))), -INT8_MAX,
                INT8_MAX).astype(np.int8)
    b = np.clip(np.rint(bias / (s_in * s_w)), *_INT32).astype(np.int32)
    return q, b, s_w


def build_lut(node: Node, s_pre: float, s_out: float) -> np.ndarray:
    """The 256-entry table of the node's activation: int8 in s_pre -> int8 in s_out."""
    x = (np.arange(256) - 128) * s_pre
    return np.clip(np.rint(node.activation(x) / s_out), -128, 127).astype(np.int8)


class _Quantizer:
    def __init__(self, graph: Graph, scales: dict[str, float], preact: dict[str, float],
                 host_fallback: bool) -> None:
        self.graph, self.scales, self.preact = graph, scales, preact
        self.host_fallback = host_fallback

    def fail(self, node: Node, reason: str) -> CompileError:
        return CompileError(reason, node=node.name, op_type=node.op_type)

    def activation(self, node: Node) -> tuple[HwActivation, np.ndarray | None, float]:
        """(hardware activation, table, scale of the value before the activation)."""
        s_out = self.scales[node.outputs[0]]
        if node.activation is None:
            return HwActivation.NONE, None, s_out
        if node.activation.kind is OpKind.RELU:
            return HwActivation.RELU, None, s_out
        s_pre = node.attrs.get("preact_scale") or \
            (self.preact.get(node.name) or 1.0) / INT8_MAX
        return HwActivation.LUT, build_lut(node, s_pre, s_out), s_pre

    def conv(self, node: Node) -> QConv:
        a = node.attrs
        s_in = self.scales[node.inputs[0]]
        q, bias, s_w = quantize_weights(node.weights["weight"], node.weights["bias"], s_in)
        act, lut, s_pre = self.activation(node)
        mult, shift = per_channel(s_in * s_w / s_pre)
        return QConv(node.name, node.inputs[0], node.outputs[0], q, bias, mult, shift,
                     stride=int(a["strides"][0]), pads=tuple(int(p) for p in a["pads"]),
                     activation=act, lut=lut)

    def pool(self, node: Node) -> QPool:
        a = node.attrs
        (_, h, w), (kh, kw), (sh, sw) = self.shape(node.inputs[0]), a["kernel"], a["strides"]
        t, l, b, r = a["pads"]
        if node.kind is OpKind.MAXPOOL and (kh, kw) == (h, w) and (sh, sw) == (1, 1) and \
                (t, l, b, r) == (0, 0, 0, 0):
            k = max(h, w)                 # a global max pool: -128 padding never wins
            return QPool(node.name, node.inputs[0], node.outputs[0], PoolKind.MAX, k, 1,
                         (0, 0, k - h, k - w))
        if kh != kw or sh != sw:
            raise self.fail(node, f"needs a square window and one stride, not {kh}x{kw} "
                                  f"stride {sh}x{sw}")
        ceil = bool(a.get("ceil_mode", 0))
        oh, ow = pool_out(h, kh, sh, t, b, ceil), pool_out(w, kw, sw, l, r, ceil)
        extra_h, extra_w = max((oh - 1) * sh + kh - (h + t + b), 0), \
            max((ow - 1) * sw + kw - (w + l + r), 0)
        if node.kind is OpKind.MAXPOOL:
            return QPool(node.name, node.inputs[0], node.outputs[0], PoolKind.MAX, kh, sh,
                         (t, l, b + extra_h, r + extra_w))
        if extra_h or extra_w:
            raise self.fail(node, "ceil_mode windows that run past the padding divide by a "
                                  "smaller count; only ceil_mode=0 (or a ceil_mode that adds "
                                  "no window) is supported")
        if not a.get("count_include_pad", 0) and any((t, l, b, r)):
            raise self.fail(node, f"count_include_pad=0 with pads {[t, l, b, r]} divides edge "
                                  "windows by fewer taps; the accelerator divides every "
                                  "window by K*K (count_include_pad=1)")
        mult, shift = multiplier_shift(1.0 / (kh * kh))
        return QPool(node.name, node.inputs[0], node.outputs[0], PoolKind.AVG, kh, sh,
                     (t, l, b, r), mult, shift)

    def global_pool(self, node: Node) -> QPool:
        _, h, w = self.shape(node.inputs[0])
        m = self.scales[node.inputs[0]] / (self.scales[node.outputs[0]] * h * w)
        mult, shift = multiplier_shift(m)
        return QPool(node.name, node.inputs[0], node.outputs[0], PoolKind.GLOBAL_AVG,
                     mult=mult, shift=shift)

    def add(self, node: Node) -> QAdd:
        if "constant" in node.weights:
            raise self.fail(node, "adding a constant is only supported as the bias of the "
                                  "Conv/Gemm right before it")
        act, lut, s_pre = self.activation(node)
        (ma, mb), shift = multipliers_shift([self.scales[t] / s_pre for t in node.inputs])
        return QAdd(node.name, node.inputs[0], node.inputs[1], node.outputs[0], ma, mb, shift,
                    act, lut)

    def host(self, node: Node) -> QHost:
        if not self.host_fallback:
            raise self.fail(node, f"{node.kind.value} cannot run on the accelerator "
                                  f"({_HOST_WHY[node.kind]}); pass --host-fallback "
                                  "(host_fallback=True) to run it on the host")
        if node.kind is OpKind.SOFTMAX:
            if node.attrs["axis"] != 1:
                raise self.fail(node, f"softmax over axis {node.attrs['axis']}; only the "
                                      "channel axis 1 is supported")
            attrs = {}
        else:
            attrs = {k: node.attrs[k] for k in ("size", "alpha", "beta", "bias")}
        return QHost(node.name, node.kind.value, tuple(node.inputs), node.outputs[0], attrs)

    def op(self, node: Node) -> QOp:
        if node.kind is OpKind.CONV:
            return self.conv(node)
        if node.kind in (OpKind.MAXPOOL, OpKind.AVGPOOL):
            return self.pool(node)
        if node.kind is OpKind.GLOBAL_AVGPOOL:
            return self.global_pool(node)
        if node.kind is OpKind.ADD:
            return self.add(node)
        if node.kind is OpKind.CONCAT:
            if node.attrs["axis"] != 1:
                raise self.fail(node, f"concatenation along axis {node.attrs['axis']}; only "
                                      "the channel axis 1 is supported")
            return QConcat(node.name, tuple(node.inputs), node.outputs[0])
        if node.kind in (OpKind.SOFTMAX, OpKind.LRN):
            return self.host(node)
        if node.kind is OpKind.PAD:
            raise self.fail(node, "explicit padding runs only as part of the Conv or "
                                  "AveragePool that reads it (folded into its padding)")
        raise self.fail(node, "has no accelerator mapping after the passes")

    def shape(self, name: str) -> tuple[int, int, int]:
        shape = self.graph.tensors[name].shape
        if len(shape) == 2:
            return (shape[1], 1, 1)
        if len(shape) != 4 or shape[0] != 1:
            producer = self.graph.producer(name)
            raise CompileError(f"tensor {name!r} has shape {list(shape)}; only [1, C, H, W] "
                               "and [1, F] activations are supported",
                               node=producer.name if producer else None,
                               op_type=producer.op_type if producer else None)
        return tuple(shape[1:])

    def qgraph(self) -> QGraph:
        ops = [self.op(node) for node in self.graph.nodes]
        tensors = {name: QTensor(name, self.shape(name), float(self.scales[name]))
                   for name in self.graph.tensors}
        return QGraph(tensors, ops, list(self.graph.inputs), list(self.graph.outputs),
                      self.graph.name)


def quantize(graph: Graph, calibration: np.ndarray | None = None, *,
             host_fallback: bool = False) -> QGraph:
    """Quantize an imported float graph (it is copied, then the pass pipeline runs on the copy)
    to int8 with `calibration` images [N, C, H, W] float32, or `default_calibration` (seeded
    noise) when None. `host_fallback` lets Softmax and LRN run on the host as QHost ops;
    without it they stop compilation."""
    graph = run_pipeline(copy.deepcopy(graph))
    data = default_calibration(graph) if calibration is None else \
        _check_calibration(graph, calibration)
    ranges, preact = activation_ranges(graph, data)
    return _Quantizer(graph, tensor_scales(graph, ranges), preact, host_fallback).qgraph()
