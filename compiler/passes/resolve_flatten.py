"""Resolve Flatten and flattening Reshapes: they move no data on the accelerator.

A [1, C, H, W] tensor flattened to [1, C*H*W] has the same element order as the [C, H, W]
tensor in DRAM, so the flatten is dropped and its readers read the 4-D tensor: a fully
connected layer then sees the feature map (passes/fc_to_conv.py turns it into an HxW
convolution), a graph output stays [C, H, W] (flattening it on the host gives ONNX's order).
Any other reader of a flattened map with H*W > 1 would need the data rearranged, which is
refused. A Reshape that keeps the shape, or only adds or removes axes of size 1 around the
channels ([1, C] <-> [1, C, 1, 1]), is resolved the same way; any other Reshape is refused.
"""

from __future__ import annotations

import math

from ..errors import CompileError
from ..graph import Graph, OpKind

__all__ = ["resolve_flatten"]


def _flattens(src: tuple[int, ...], dst: tuple[int, ...]) -> bool:
    if src == dst:
        return True
    total = math.prod(src)
    return len(src) >= 2 and src[0] == 1 and dst in ((1, total), (1, total, 1, 1))


def resolve_flatten(graph: Graph) -> Graph:
    for node in [n for n in graph.nodes if n.kind in (OpKind.FLATTEN, OpKind.RESHAPE)]:
        (src,), (dst,) = node.inputs, node.outputs
        src_shape, dst_shape = graph.tensors[src].shape, graph.tensors[dst].shape
        if not _flattens(src_shape, dst_shape):
            raise CompileError(f"reshaping {list(src_shape)} to {list(dst_shape)} is not "
                               "supported (only flattening [1, C, H, W] to [1, C*H*W])",
                               node=node.name, op_type=node.op_type)
        moves_data = math.prod(src_shape[2:]) > 1 and src_shape != dst_shape
        for user in graph.consumers(dst):
            if moves_data and user.kind is not OpKind.GEMM:
                raise CompileError(
                    f"its {list(dst_shape)} output feeds {user.name!r} ({user.op_type}); a "
                    f"flattened {list(src_shape)} map can only feed fully connected layers "
                    "or be a graph output", node=node.name, op_type=node.op_type)
        graph.nodes.remove(node)
        if graph.tensors[src].scale is None:
            graph.tensors[src].scale = graph.tensors[dst].scale
        graph.rename(dst, src)
    graph.prune_tensors()
    return graph
