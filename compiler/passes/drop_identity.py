"""Drop Dropout and Identity nodes: at inference both pass their input through unchanged."""

from __future__ import annotations

from ..graph import Graph, OpKind

__all__ = ["drop_identity"]


def drop_identity(graph: Graph) -> Graph:
    """Readers of each Dropout/Identity output read its input instead; a scale the removed
    tensor carried moves to the input when that has none."""
    for node in [n for n in graph.nodes if n.kind in (OpKind.DROPOUT, OpKind.IDENTITY)]:
        (src,), (dst,) = node.inputs, node.outputs
        graph.nodes.remove(node)
        if graph.tensors[src].scale is None:
            graph.tensors[src].scale = graph.tensors[dst].scale
        graph.rename(dst, src)
    graph.prune_tensors()
    return graph
