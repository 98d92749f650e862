"""Rewrite every convolution into the one form the accelerator runs: a square KxK kernel, one
stride for both axes, no dilation, one group.

- groups (depthwise included) become one dense convolution whose weight is block diagonal
  (zeros between groups): exact, at the cost of group-times more multiply-accumulates;
- a dilation d stretches a k-tap kernel to (k-1)*d+1 taps with zeros between: exact;
- a KhxKw kernel grows to K = max(Kh, Kw) with zero rows (columns) at the bottom (right) and
  the bottom (right) padding grown by the same amount: every output keeps its window, so the
  output size and values are unchanged.
Different strides along H and W cannot be expressed and stop compilation.
"""

from __future__ import annotations

import numpy as np

from ..errors import CompileError
from ..graph import Graph, OpKind

__all__ = ["normalize_conv"]


def normalize_conv(graph: Graph) -> Graph:
    for node in [n for n in graph.nodes if n.kind is OpKind.CONV]:
        a = node.attrs
        sh, sw = a["strides"]
        if sh != sw:
            raise CompileError(f"strides {sh}x{sw} differ; the accelerator has one stride for "
                               "both axes", node=node.name, op_type=node.op_type)
        w = node.weights["weight"]
        group = a.get("group", 1)
        if group > 1:
            cout, cin = w.shape[0] // group, w.shape[1]
            dense = np.zeros((w.shape[0], cin * group) + w.shape[2:])
            for g in range(group):
                dense[g * cout:(g + 1) * cout, g * cin:(g + 1) * cin] = w[g * cout:(g + 1) * cout]
            w = dense
        dh, dw = a.get("dilations", (1, 1))
        if (dh, dw) != (1, 1):
            kh, kw = w.shape[2:]
            stretched = np.zeros(w.shape[:2] + ((kh - 1) * dh + 1, (kw - 1) * dw + 1))
            stretched[:, :, ::dh, ::dw] = w
            w = stretched
        kh, kw = w.shape[2:]
        k = max(kh, kw)
        t, l, b, r = a["pads"]
        if (kh, kw) != (k, k):
            square = np.zeros(w.shape[:2] + (k, k))
            square[:, :, :kh, :kw] = w
            w = square
            b, r = b + k - kh, r + k - kw
        node.weights["weight"] = w
        a.update({"strides": (sh, sh), "dilations": (1, 1), "group": 1, "pads": (t, l, b, r)})
    return graph
