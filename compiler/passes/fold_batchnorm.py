"""Fold BatchNormalization into the Conv or Gemm before it.

With a = scale / sqrt(var + eps) per channel, BN(conv(x)) = conv'(x) with weight' = weight * a
(per output channel) and bias' = (bias - mean) * a + B. Applies when the convolution's output
has no other reader; a batch norm elsewhere is left for passes/batchnorm_to_conv.py.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, OpKind

__all__ = ["fold_batchnorm"]


def fold_batchnorm(graph: Graph) -> Graph:
    for bn in [n for n in graph.nodes if n.kind is OpKind.BATCHNORM]:
        (x,) = bn.inputs
        producer = graph.producer(x)
        if producer is None or producer.kind not in (OpKind.CONV, OpKind.GEMM) or \
                producer.activation is not None or graph.sole_consumer(x) is not bn:
            continue
        w = bn.weights
        a = w["scale"] / np.sqrt(w["var"] + bn.attrs.get("epsilon", 1e-5))
        weight = producer.weights["weight"]
        producer.weights["weight"] = weight * a.reshape((-1,) + (1,) * (weight.ndim - 1))
        producer.weights["bias"] = (producer.weights["bias"] - w["mean"]) * a + w["bias"]
        producer.outputs = list(bn.outputs)
        graph.nodes.remove(bn)
    graph.prune_tensors()
    return graph
