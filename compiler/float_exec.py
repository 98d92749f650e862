"""The float reference: any IR graph (imported or after passes) executed in NumPy.

Used for calibration (the range of every tensor over the calibration set) and as the float
truth in tests. Computes in float64 on a batch [N, ...]; the graph's batch-1 shapes are only
checked per image. A node with a fused activation also reports the value before it, because a
lookup-table activation needs the scale of its input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import CompileError
from .graph import ELEMENTWISE, Graph, Node, OpKind
from .shapes import pool_out

__all__ = ["run_float", "evaluate"]


def _pad(x: np.ndarray, pads: tuple[int, int, int, int], fill: float) -> np.ndarray:
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=fill)


def _windows(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
             dilations: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """[N, C, OH, OW, KH, KW] windows of a padded [N, C, H, W] array."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, strides, dilations, out
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    view = np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))
    return view[:, :, :oh * sh:sh, :ow * sw:sw, ::dh, ::dw][:, :, :oh, :ow]


def _conv(node: Node, x: np.ndarray) -> np.ndarray:
    a, w = node.attrs, node.weights["weight"].astype(np.float64)
    group, (kh, kw) = a.get("group", 1), w.shape[2:]
    dil = tuple(a.get("dilations", (1, 1)))
    xp = _pad(x, a["pads"], 0.0)
    oh = (xp.shape[2] - ((kh - 1) * dil[0] + 1)) // a["strides"][0] + 1
    ow = (xp.shape[3] - ((kw - 1) * dil[1] + 1)) // a["strides"][1] + 1
    win = _windows(xp, (kh, kw), a["strides"], dil, (oh, ow))
    cin, cout = w.shape[1], w.shape[0] // group
    parts = []
    for g in range(group):
        wg = win[:, g * cin:(g + 1) * cin]                      # [N, Cin, OH, OW, KH, KW]
        cols = wg.transpose(0, 2, 3, 1, 4, 5).reshape(x.shape[0], oh, ow, -1)
        parts.append(cols @ w[g * cout:(g + 1) * cout].reshape(cout, -1).T)
    y = np.concatenate(parts, axis=-1).transpose(0, 3, 1, 2)
    return y + node.weights.get("bias", np.zeros(w.shape[0]))[None, :, None, None]


def _pool(node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    (kh, kw), (sh, sw), (t, l, b, r) = a["kernel"], a["strides"], a["pads"]
    ceil = bool(a.get("ceil_mode", 0))
    oh, ow = pool_out(x.shape[2], kh, sh, t, b, ceil), pool_out(x.shape[3], kw, sw, l, r, ceil)
    # ceil_mode windows may run past the padding: extend it so every window exists.
    extra_h = max((oh - 1) * sh + kh - (x.shape[2] + t + b), 0)
    extra_w = max((ow - 1) * sw + kw - (x.shape[3] + l + r), 0)
    if node.kind is OpKind.MAXPOOL:
        xp = _pad(x, (t, l, b + extra_h, r + extra_w), -np.inf)
        return _windows(xp, (kh, kw), (sh, sw), (1, 1), (oh, ow)).max(axis=(4, 5))
    total = _windows(_pad(x, (t, l, b + extra_h, r + extra_w), 0.0), (kh, kw), (sh, sw),
                     (1, 1), (oh, ow)).sum(axis=(4, 5))
    ones = np.ones((1, 1) + x.shape[2:])
    inside = _pad(ones, (t, l, b, r), 1.0 if a.get("count_include_pad", 0) else 0.0)
    count = _windows(_pad(inside, (0, 0, extra_h, extra_w), 0.0), (kh, kw), (sh, sw), (1, 1),
                     (oh, ow)).sum(axis=(4, 5))
    return total / count


def _batchnorm(node: Node, x: np.ndarray) -> np.ndarray:
    w = node.weights
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = w["scale"] / np.sqrt(w["var"] + node.attrs.get("epsilon", 1e-5))
    return (x - w["mean"].reshape(shape)) * scale.reshape(shape) + w["bias"].reshape(shape)


def _softmax(node: Node, x: np.ndarray) -> np.ndarray:
    axis = node.attrs.get("axis", 1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _lrn(node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    size = a["size"]
    sq = np.pad(x ** 2, ((0, 0), ((size - 1) // 2, size // 2), (0, 0), (0, 0)))
    window = np.lib.stride_tricks.sliding_window_view(sq, size, axis=1).sum(axis=-1)
    return x / (a.get("bias", 1.0) + a.get("alpha", 1e-4) / size * window) ** a.get("beta", 0.75)


def _reshape(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return x.reshape((x.shape[0],) + tuple(shape[1:]))


_OPS: dict[OpKind, Callable[[Node, list[np.ndarray]], np.ndarray]] = {
    OpKind.CONV: lambda n, xs: _conv(n, xs[0]),
    OpKind.GEMM: lambda n, xs: _reshape(
        xs[0].reshape(xs[0].shape[0], -1) @ n.weights["weight"].T + n.weights["bias"],
        (1, -1) if len(xs[0].shape) == 2 else (1, -1, 1, 1)),
    OpKind.ADD: lambda n, xs: xs[0] + (n.weights["constant"] if len(xs) == 1 else xs[1]),
    OpKind.BATCHNORM: lambda n, xs: _batchnorm(n, xs[0]),
    OpKind.MAXPOOL: lambda n, xs: _pool(n, xs[0]),
    OpKind.AVGPOOL: lambda n, xs: _pool(n, xs[0]),
    OpKind.GLOBAL_AVGPOOL: lambda n, xs: xs[0].mean(axis=(2, 3), keepdims=bool(
        n.attrs.get("keepdims", 1))),
    OpKind.PAD: lambda n, xs: _pad(xs[0], n.attrs["pads"], 0.0),
    OpKind.FLATTEN: lambda n, xs: xs[0].reshape(xs[0].shape[0], -1),
    OpKind.RESHAPE: lambda n, xs: _reshape(xs[0], n.attrs["shape"]),
    OpKind.CONCAT: lambda n, xs: np.concatenate(xs, axis=n.attrs["axis"]),
    OpKind.DROPOUT: lambda n, xs: xs[0],
    OpKind.IDENTITY: lambda n, xs: xs[0],
    OpKind.SOFTMAX: lambda n, xs: _softmax(n, xs[0]),
    OpKind.LRN: lambda n, xs: _lrn(n, xs[0]),
}
for _kind, _fn in ELEMENTWISE.items():
    _OPS[_kind] = (lambda f: lambda n, xs: f(xs[0], n.attrs))(_fn)


def evaluate(graph: Graph, x: np.ndarray
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(every tensor by name, the pre-activation value of every node with a fused activation
    by node name) for the batch `x` [N, C, H, W]."""
    (name,) = graph.inputs
    want = graph.tensors[name].shape[1:]
    x = np.asarray(x, np.float64)
    if x.ndim != len(want) + 1 or x.shape[1:] != want:
        raise CompileError(f"input {name!r} must be [N, {', '.join(map(str, want))}], "
                           f"not {list(x.shape)}")
    values, preact = {name: x}, {}
    for node in graph.nodes:
        y = _OPS[node.kind](node, [values[t] for t in node.inputs])
        if node.activation is not None:
            preact[node.name] = y
            y = node.activation(y)
        (out,) = node.outputs
        values[out] = y
    return values, preact


def run_float(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """The graph outputs (float32) for the batch `x`."""
    values, _ = evaluate(graph, x)
    return {t: values[t].astype(np.float32) for t in graph.outputs}
