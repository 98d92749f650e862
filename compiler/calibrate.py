"""Activation ranges from a calibration set, and the per-tensor scales derived from them.

Range statistic: the maximum absolute value over all calibration images. The alternative, a
percentile (e.g. 99.99%), clips rare outliers to gain resolution; it pays off with large
calibration sets of real images, but with the handful of images a user or a test typically
passes the top percentile is a few samples, its estimate is noisy, and clipping makes the
error unbounded for inputs like the calibration images. Max-abs never clips the calibration
images, so the error of every tensor stays within half a step of its scale plus what earlier
layers contribute: the bound the tests check.

Scale groups: some ops move int8 values without rescaling, so their tensors must share a scale:
max and average pooling (input and output) and concatenation (all inputs and the output: the
inputs are placed side by side in one buffer). Each group takes the largest range of its
members; a scale carried by a pre-quantized model wins over calibration (the largest carried
scale in the group). A tensor that was zero on every image gets scale 1/127 (range 1).
"""

from __future__ import annotations

import numpy as np

from .float_exec import evaluate
from .graph import Graph, OpKind

__all__ = ["INT8_MAX", "activation_ranges", "scale_groups", "tensor_scales"]

INT8_MAX = 127
_BATCH = 16   # images per float evaluation: bounds the memory of the per-tensor values


def activation_ranges(graph: Graph, calibration: np.ndarray
                      ) -> tuple[dict[str, float], dict[str, float]]:
    """(max |value| of every tensor, max |value| before each fused activation by node name)."""
    ranges: dict[str, float] = {}
    preact: dict[str, float] = {}
    for start in range(0, len(calibration), _BATCH):
        values, before = evaluate(graph, calibration[start:start + _BATCH])
        for store, found in ((ranges, values), (preact, before)):
            for name, v in found.items():
                store[name] = max(store.get(name, 0.0), float(np.max(np.abs(v))))
    return ranges, preact


def scale_groups(graph: Graph) -> dict[str, str]:
    """Each tensor's group representative (union-find over pools and concats)."""
    parent = {name: name for name in graph.tensors}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for node in graph.nodes:
        if node.kind in (OpKind.MAXPOOL, OpKind.AVGPOOL, OpKind.CONCAT):
            for t in node.inputs[1:] + node.outputs:
                parent[find(t)] = find(node.inputs[0])
    return {t: find(t) for t in graph.tensors}


def tensor_scales(graph: Graph, ranges: dict[str, float]) -> dict[str, float]:
    """The int8 scale of every tensor: group range / 127, or the carried scale."""
    groups = scale_groups(graph)
    calibrated: dict[str, float] = {}
    carried: dict[str, float] = {}
    for name, tensor in graph.tensors.items():
        g = groups[name]
        calibrated[g] = max(calibrated.get(g, 0.0), ranges.get(name, 0.0))
        if tensor.scale is not None:
            carried[g] = max(carried.get(g, 0.0), tensor.scale)
    return {name: carried.get(g) or (calibrated[g] or 1.0) / INT8_MAX
            for name, g in groups.items()}
