"""Fold a zero Pad into the padding of the Conv or AveragePool that reads it.

Exporters for older opsets write a padded average pool as Pad + AveragePool, and some models
pad explicitly before a convolution. Zero padding is what the convolution's own padding adds,
and for an average pool the padded zeros are counted in each window, i.e. count_include_pad=1
(the accelerator's rule), so the Pad merges into the reader's pads when the reader is its only
consumer (an average pool with pads of its own must already count them). A Pad before a max
pool is not zero-neutral (the accelerator pads max pools with -128) and is left, to be
refused with its node named.
"""

from __future__ import annotations

from ..graph import Graph, OpKind

__all__ = ["fold_pad"]


def fold_pad(graph: Graph) -> Graph:
    for pad in [n for n in graph.nodes if n.kind is OpKind.PAD]:
        (x,), (y,) = pad.inputs, pad.outputs
        user = graph.sole_consumer(y)
        if user is None or user.kind not in (OpKind.CONV, OpKind.AVGPOOL):
            continue
        if user.kind is OpKind.AVGPOOL:
            if any(user.attrs["pads"]) and not user.attrs.get("count_include_pad", 0):
                continue
            user.attrs["count_include_pad"] = 1
        user.attrs["pads"] = tuple(p + q for p, q in zip(user.attrs["pads"], pad.attrs["pads"]))
        graph.nodes.remove(pad)
        graph.rename(y, x)
    graph.prune_tensors()
    return graph
