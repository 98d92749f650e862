"""Run an activation that could not be fused as a 1x1 identity convolution carrying it.

After passes/fuse_activation.py, an activation is left alone only when its input is not a
Conv/Add's private output (after a pool or concat, on the network input, or on a tensor with
other readers). The accelerator applies activations only in the convolution's and the adder's
post-processing, so it becomes y = act(1 * x): exact in float, C*C multiply-accumulates per
pixel.
"""

from __future__ import annotations

import numpy as np

from ..graph import ELEMENTWISE, Activation, Graph
from .batchnorm_to_conv import make_diagonal_conv

__all__ = ["activation_to_conv"]


def activation_to_conv(graph: Graph) -> Graph:
    for node in [n for n in graph.nodes if n.kind in ELEMENTWISE]:
        channels = graph.tensors[node.inputs[0]].shape[1]
        params = tuple(sorted((k, float(v)) for k, v in node.attrs.items() if k != "op_type"))
        activation = Activation(node.kind, params)
        make_diagonal_conv(node, np.ones(channels), np.zeros(channels))
        node.activation = activation
    return graph
