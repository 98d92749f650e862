"""Fold `Add(x, constant)` into the bias of the Conv or Gemm that produces x.

Older exporters and MatMul-based fully connected layers write the bias as a separate Add. The
constant must be one value per channel (shape [C], [1, C], [C, 1, 1] or [1, C, 1, 1] after
broadcasting, or a scalar), and x must have no other reader.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, OpKind

__all__ = ["fold_bias_add"]


def _per_channel(constant: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """The constant as one value per channel of a tensor of `shape`, or None."""
    full = np.broadcast_to(constant, shape)
    per = full.reshape(shape[0], shape[1], -1)[0, :, 0]
    if not np.array_equal(full, np.broadcast_to(
            per.reshape((1, -1) + (1,) * (len(shape) - 2)), shape)):
        return None
    return per


def fold_bias_add(graph: Graph) -> Graph:
    for add in [n for n in graph.nodes if n.kind is OpKind.ADD and "constant" in n.weights]:
        (x,) = add.inputs
        producer = graph.producer(x)
        if producer is None or producer.kind not in (OpKind.CONV, OpKind.GEMM) or \
                producer.activation is not None or graph.sole_consumer(x) is not add:
            continue
        per = _per_channel(add.weights["constant"], graph.tensors[x].shape)
        if per is None:
            continue
        producer.weights["bias"] = producer.weights["bias"] + per
        producer.outputs = list(add.outputs)
        graph.nodes.remove(add)
    graph.prune_tensors()
    return graph
