"""Serialisation of a quantized graph, so that a program file carries its golden model.

The graph's structure goes to JSON and its arrays to an uncompressed `.npz` archive, both in one
byte string (`qgraph_to_bytes`); the program file stores it as the attachment "qgraph", and
`systolica run --backend reference` executes it with compiler/reference.py.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import numpy as np

from hw.isa import Activation, PoolKind

from .qgraph import QAdd, QConcat, QConv, QGraph, QHost, QPool, QTensor

__all__ = ["ATTACHMENT", "qgraph_to_bytes", "qgraph_from_bytes"]

ATTACHMENT = "qgraph"
_KINDS = {cls.__name__: cls for cls in (QConv, QPool, QAdd, QConcat, QHost)}
_ENUMS = {"activation": Activation, "kind": PoolKind}


def qgraph_to_bytes(graph: QGraph) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    ops = []
    for index, op in enumerate(graph.ops):
        entry: dict = {"type": type(op).__name__}
        for f in dataclasses.fields(op):
            value = getattr(op, f.name)
            if isinstance(value, np.ndarray):
                key = f"op{index}.{f.name}"
                arrays[key] = value
                entry[f.name] = {"array": key}
            elif isinstance(value, (Activation, PoolKind)):
                entry[f.name] = value.name
            elif isinstance(value, tuple):
                entry[f.name] = list(value)
            else:
                entry[f.name] = value
        ops.append(entry)
    structure = {
        "name": graph.name, "inputs": graph.inputs, "outputs": graph.outputs,
        "tensors": [{"name": t.name, "shape": list(t.shape), "scale": t.scale}
                    for t in graph.tensors.values()],
        "ops": ops,
    }
    out = io.BytesIO()
    np.savez(out, __structure__=np.frombuffer(json.dumps(structure).encode(), np.uint8),
             **arrays)
    return out.getvalue()


def qgraph_from_bytes(blob: bytes) -> QGraph:
    try:
        archive = np.load(io.BytesIO(blob), allow_pickle=False)
        structure = json.loads(archive["__structure__"].tobytes().decode())
        tensors = {t["name"]: QTensor(t["name"], tuple(t["shape"]), float(t["scale"]))
                   for t in structure["tensors"]}
        ops = []
        for entry in structure["ops"]:
            cls = _KINDS[entry.pop("type")]
            kwargs = {}
            for f in dataclasses.fields(cls):
                if f.name not in entry:
                    continue
                value = entry[f.name]
                if isinstance(value, dict) and "array" in value:
                    value = archive[value["array"]]
                elif f.name in _ENUMS:
                    value = _ENUMS[f.name][value]
                elif isinstance(value, list):
                    value = tuple(value)
                kwargs[f.name] = value
            ops.append(cls(**kwargs))
    except (KeyError, TypeError, ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"the quantized-graph attachment is malformed: {exc!r}") from None
    return QGraph(tensors=tensors, ops=ops, inputs=list(structure["inputs"]),
                  outputs=list(structure["outputs"]), name=structure["name"])
