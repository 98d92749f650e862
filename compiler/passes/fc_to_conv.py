"""Turn fully connected layers into convolutions whose kernel covers the whole input.

After passes/resolve_flatten.py a Gemm reads either a [1, C, H, W] feature map or a [1, F]
vector. The flattened index of (c, y, x) is c*H*W + y*W + x, so the Gemm weight [K, C*H*W]
reshapes to a conv weight [K, C, H, W]: a valid HxW convolution (stride 1, no padding) with one
output pixel computes exactly the product. A vector [1, F] is a 1x1 map with F channels, so
the weight becomes [K, F, 1, 1]. Outputs are [1, K, 1, 1]; a global average pool that dropped
its spatial axes (ReduceMean keepdims=0) keeps them, so every activation is a 4-D map and the
quantized graph's [C, H, W] tensors follow directly.
"""

from __future__ import annotations

from ..graph import Graph, OpKind

__all__ = ["fc_to_conv"]


def fc_to_conv(graph: Graph) -> Graph:
    for node in graph.nodes:
        if node.kind is OpKind.GLOBAL_AVGPOOL:
            node.attrs["keepdims"] = 1
        if node.kind is not OpKind.GEMM:
            continue
        shape = graph.tensors[node.inputs[0]].shape
        c, h, w = (shape[1], 1, 1) if len(shape) == 2 else shape[1:]
        weight = node.weights["weight"]
        node.kind = OpKind.CONV
        node.attrs.setdefault("op_type", "Gemm")
        node.attrs.update({"strides": (1, 1), "dilations": (1, 1), "group": 1,
                           "pads": (0, 0, 0, 0)})
        node.weights["weight"] = weight.reshape(weight.shape[0], c, h, w)
    return graph
