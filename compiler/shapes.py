"""Shape inference on the float IR: recompute every tensor's shape from the node semantics.

Runs after import and after every pass; a node whose operands do not fit together (channels of
a convolution, an add of two different shapes, a concat of different planes, a fully connected
layer of the wrong width) stops compilation with a `CompileError` naming it.
"""

from __future__ import annotations

import math

from .errors import CompileError
from .graph import ELEMENTWISE, Graph, Node, OpKind

__all__ = ["infer_shapes", "node_shape", "conv_out", "pool_out"]


def conv_out(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
             dilation: int = 1) -> int:
    """Output length of a convolution along one axis."""
    return (size + pad_begin + pad_end - ((kernel - 1) * dilation + 1)) // stride + 1


def pool_out(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
             ceil_mode: bool) -> int:
    """Output length of a pooling window along one axis (ONNX rule: with ceil_mode a last
    window must start inside the input or the begin padding)."""
    span = size + pad_begin + pad_end - kernel
    if not ceil_mode:
        return span // stride + 1
    out = math.ceil(span / stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def _fail(node: Node, reason: str) -> CompileError:
    return CompileError(reason, node=node.name, op_type=node.op_type)


def _spatial(node: Node, shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 4:
        raise _fail(node, f"needs a 4-D NCHW input, got shape {list(shape)}")
    return shape[1], shape[2], shape[3]


def node_shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    k, a = node.kind, node.attrs
    if k is OpKind.CONV:
        c, h, w = _spatial(node, ins[0])
        wt = node.weights["weight"]
        group = a.get("group", 1)
        if wt.ndim != 4 or wt.shape[1] * group != c or wt.shape[0] % group:
            raise _fail(node, f"weight {list(wt.shape)} with group {group} does not fit an input "
                              f"of {c} channels (input shape {list(ins[0])})")
        (kh, kw), (sh, sw), (dh, dw) = wt.shape[2:], a["strides"], a.get("dilations", (1, 1))
        t, l, b, r = a["pads"]
        oh, ow = conv_out(h, kh, sh, t, b, dh), conv_out(w, kw, sw, l, r, dw)
        if oh < 1 or ow < 1:
            raise _fail(node, f"a {kh}x{kw} kernel does not fit the padded {h}x{w} input")
        return (1, wt.shape[0], oh, ow)
    if k is OpKind.GEMM:
        features = math.prod(ins[0][1:])
        wt = node.weights["weight"]
        if wt.shape[1] != features:
            raise _fail(node, f"weight {list(wt.shape)} expects {wt.shape[1]} input features, "
                              f"the input {list(ins[0])} has {features}")
        return (1, wt.shape[0]) if len(ins[0]) == 2 else (1, wt.shape[0], 1, 1)
    if k in (OpKind.MAXPOOL, OpKind.AVGPOOL):
        c, h, w = _spatial(node, ins[0])
        (kh, kw), (sh, sw), (t, l, b, r) = a["kernel"], a["strides"], a["pads"]
        ceil = bool(a.get("ceil_mode", 0))
        oh, ow = pool_out(h, kh, sh, t, b, ceil), pool_out(w, kw, sw, l, r, ceil)
        if oh < 1 or ow < 1:
            raise _fail(node, f"a {kh}x{kw} window does not fit the padded {h}x{w} input")
        return (1, c, oh, ow)
    if k is OpKind.PAD:
        c, h, w = _spatial(node, ins[0])
        t, l, b, r = a["pads"]
        return (1, c, h + t + b, w + l + r)
    if k is OpKind.GLOBAL_AVGPOOL:
        c, _, _ = _spatial(node, ins[0])
        return (1, c, 1, 1) if a.get("keepdims", 1) else (1, c)
    if k is OpKind.ADD:
        if "constant" in node.weights:
            return ins[0]
        if ins[0] != ins[1]:
            raise _fail(node, f"adds tensors of different shapes {list(ins[0])} and "
                              f"{list(ins[1])} (broadcasting between activations is not supported)")
        return ins[0]
    if k is OpKind.CONCAT:
        axis = a["axis"]
        rest = {s[:axis] + s[axis + 1:] for s in ins}
        if len(rest) != 1 or any(len(s) != len(ins[0]) for s in ins):
            raise _fail(node, f"concatenates shapes {[list(s) for s in ins]} that differ "
                              f"outside axis {axis}")
        return ins[0][:axis] + (sum(s[axis] for s in ins),) + ins[0][axis + 1:]
    if k is OpKind.FLATTEN:
        axis = a.get("axis", 1)
        return (math.prod(ins[0][:axis]), math.prod(ins[0][axis:]))
    if k is OpKind.RESHAPE:
        target = tuple(a["shape"])
        if math.prod(target) != math.prod(ins[0]):
            raise _fail(node, f"cannot reshape {list(ins[0])} to {list(target)}")
        return target
    if k is OpKind.BATCHNORM:
        c = ins[0][1]
        if any(v.shape != (c,) for v in node.weights.values()):
            raise _fail(node, f"parameters {[list(v.shape) for v in node.weights.values()]} do "
                              f"not match {c} channels")
        return ins[0]
    if k in ELEMENTWISE or k in (OpKind.DROPOUT, OpKind.IDENTITY, OpKind.SOFTMAX, OpKind.LRN):
        return ins[0]
    raise _fail(node, f"no shape rule for {k}")


def infer_shapes(graph: Graph) -> Graph:
    """Recompute the shape of every node output in place; returns the graph."""
    for node in graph.nodes:
        missing = [t for t in node.inputs if t not in graph.tensors]
        if missing:
            raise _fail(node, f"reads {missing[0]!r}, which nothing produces")
        shape = node_shape(node, [graph.tensors[t].shape for t in node.inputs])
        for out in node.outputs:
            graph.tensors[out].shape = tuple(int(d) for d in shape)
    return graph
