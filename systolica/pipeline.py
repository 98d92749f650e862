"""Trained network -> program file: import, quantize, split off host ops, compile, attach.

`compile_network` is what `systolica compile` runs; the demo and the benchmarks call it too.
The program it returns carries everything `systolica run` needs besides the instructions:

- attachment `compiler.qgraph_io.ATTACHMENT` ("qgraph"): the whole quantized graph, host ops
  included: the golden model the reference backend executes, and the source of the host-tail
  ops that run after the accelerator's program (`compiler.host_split`);
- `meta["model"]`: the network's input (name, NCHW shape, scale) and its outputs as the model
  declares them (name, shape with batch 1, e.g. [1, 10] after a flatten; the accelerator's
  output is [C, H, W] and is reshaped back), whether the host runs ops, and where the
  calibration came from.
"""

from __future__ import annotations

import os

import numpy as np

from compiler.compile import compile_qgraph
from compiler.errors import CompileError
from compiler.frontend import load_onnx
from compiler.graph import Graph
from compiler.host_split import split_host_tail
from compiler.qgraph_io import ATTACHMENT, qgraph_to_bytes
from compiler.quantize import quantize
from hw.config import AcceleratorConfig
from hw.program import Program

__all__ = ["MODEL_META", "compile_network", "compile_onnx"]

#: Key of `Program.meta` describing the network's own inputs and outputs.
MODEL_META = "model"


def compile_network(graph: Graph, config: AcceleratorConfig, *,
                    calibration: np.ndarray | None = None,
                    host_fallback: bool = False) -> Program:
    """Quantize the float graph (`calibration`: float32 [N, C, H, W], None for the default
    seeded-noise set), compile its accelerator part for `config`, and attach the quantized
    graph and the model description (module docstring). Raises `CompileError`."""
    qgraph = quantize(graph, calibration, host_fallback=host_fallback)
    if len(qgraph.inputs) != 1:
        raise CompileError(f"the network has {len(qgraph.inputs)} inputs "
                           f"({', '.join(qgraph.inputs)}); only one input is supported")
    if len(qgraph.outputs) != len(graph.outputs):
        raise CompileError(f"quantization changed the number of outputs from "
                           f"{len(graph.outputs)} to {len(qgraph.outputs)}")
    accel, host = split_host_tail(qgraph)
    program = compile_qgraph(accel, config)
    program.attachments[ATTACHMENT] = qgraph_to_bytes(qgraph)
    (name,) = qgraph.inputs
    outputs = []
    for declared, qname in zip(graph.outputs, qgraph.outputs):
        shape = [1, *graph.tensors[declared].shape[1:]]
        size = int(np.prod(qgraph.tensors[qname].shape))
        if int(np.prod(shape)) != size:
            raise CompileError(f"output {declared!r}: the model declares shape {shape} but the "
                               f"quantized graph computes {size} values")
        outputs.append({"name": qname, "shape": shape})
    program.meta[MODEL_META] = {
        "input": {"name": name, "shape": [1, *qgraph.tensors[name].shape],
                  "scale": qgraph.tensors[name].scale},
        "outputs": outputs,
        "host_ops": [{"name": op.name, "op_type": op.op_type} for op in host],
        "calibration": "default" if calibration is None else f"{len(calibration)} images",
    }
    return program


def compile_onnx(path: str | os.PathLike, config: AcceleratorConfig, *,
                 calibration: np.ndarray | None = None,
                 host_fallback: bool = False) -> Program:
    """`compile_network` of the ONNX model at `path`."""
    return compile_network(load_onnx(path), config, calibration=calibration,
                           host_fallback=host_fallback)
