"""Run a batch norm that has no convolution to fold into as a 1x1 convolution.

A BatchNormalization whose input is not a convolution's private output (after a pool, an add,
a concat, or on the network input) is y = a*x + b per channel with a = scale/sqrt(var + eps),
b = B - mean*a: a 1x1 convolution with the diagonal weight a and bias b. Exact in float; it
costs C*C multiply-accumulates per pixel, which is why passes/fold_batchnorm.py runs first.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, OpKind

__all__ = ["batchnorm_to_conv", "make_diagonal_conv"]


def make_diagonal_conv(node: Node, a: np.ndarray, bias: np.ndarray) -> None:
    """Turn `node` in place into the 1x1 convolution y[c] = a[c] * x[c] + bias[c]."""
    node.attrs = {"op_type": node.attrs.get("op_type", node.kind.value), "strides": (1, 1),
                  "dilations": (1, 1), "group": 1, "pads": (0, 0, 0, 0)}
    node.weights = {"weight": np.diag(a)[:, :, None, None], "bias": bias}
    node.kind = OpKind.CONV


def batchnorm_to_conv(graph: Graph) -> Graph:
    for node in [n for n in graph.nodes if n.kind is OpKind.BATCHNORM]:
        w = node.weights
        a = w["scale"] / np.sqrt(w["var"] + node.attrs.get("epsilon", 1e-5))
        make_diagonal_conv(node, a, w["bias"] - w["mean"] * a)
    return graph
