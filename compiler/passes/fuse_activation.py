"""Fuse an elementwise activation into the Conv, Gemm or Add that produces its input.

The accelerator applies the activation in the post-processing stage of a convolution or in
the element-wise unit after an add (ReLU directly, LeakyReLU/Sigmoid/Tanh/Clip through the
256-entry lookup table), so no separate pass over the tensor is needed. Applies when the
producer's output has no other reader and is not a graph output. A scale a pre-quantized model
carried on the intermediate tensor is kept as the producer's `preact_scale` (the input scale
of the lookup table).
"""

from __future__ import annotations

from ..graph import ELEMENTWISE, Activation, Graph, OpKind

__all__ = ["fuse_activation"]


def fuse_activation(graph: Graph) -> Graph:
    for act in [n for n in graph.nodes if n.kind in ELEMENTWISE]:
        (x,) = act.inputs
        producer = graph.producer(x)
        if producer is None or producer.kind not in (OpKind.CONV, OpKind.GEMM, OpKind.ADD) or \
                producer.activation is not None or graph.sole_consumer(x) is not act:
            continue
        params = tuple(sorted((k, float(v)) for k, v in act.attrs.items() if k != "op_type"))
        producer.activation = Activation(act.kind, params)
        if graph.tensors[x].scale is not None:
            producer.attrs["preact_scale"] = graph.tensors[x].scale
        producer.outputs = list(act.outputs)
        graph.nodes.remove(act)
    graph.prune_tensors()
    return graph
