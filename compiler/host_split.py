"""Split host ops (softmax, LRN under --host-fallback) off the end of a quantized graph.

The accelerator program cannot call the host in the middle of a run, so host ops are supported
where networks have them: at the tail (a classifier's softmax). `split_host_tail` returns the
accelerator part, whose outputs are the tensors the host ops read (plus any graph output the
accelerator computes), and the host ops in order; `run_host_tail` applies them to the
program's int8 outputs exactly as the golden reference does. A host op whose result feeds an
accelerator op raises `CompileError` naming it.
"""

from __future__ import annotations

import numpy as np

from . import reference
from .errors import CompileError
from .qgraph import QGraph, QHost

__all__ = ["split_host_tail", "run_host_tail"]


def split_host_tail(graph: QGraph) -> tuple[QGraph, list[QHost]]:
    """(accelerator graph, host ops) of a graph whose host ops only feed host ops or outputs."""
    host = [op for op in graph.ops if isinstance(op, QHost)]
    if not host:
        return graph, []
    host_outputs = {op.output for op in host}
    for op in graph.ops:
        if not isinstance(op, QHost) and host_outputs & set(op.inputs):
            source = next(h for h in host if h.output in op.inputs)
            raise CompileError(
                f"runs on the host but its output feeds accelerator op {op.name!r}; host ops "
                "are supported only at the end of the network", node=source.name,
                op_type=source.op_type)
    needed = [t for op in host for t in op.inputs if t not in host_outputs]
    outputs = [t for t in graph.outputs if t not in host_outputs]
    outputs += [t for t in dict.fromkeys(needed) if t not in outputs]
    accel = QGraph(tensors=dict(graph.tensors),
                   ops=[op for op in graph.ops if not isinstance(op, QHost)],
                   inputs=list(graph.inputs), outputs=outputs, name=graph.name)
    return accel, host


def run_host_tail(graph: QGraph, host: list[QHost], values: dict[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """Apply the host ops to the accelerator's int8 outputs (with the golden reference's own
    host-op code); returns every output of `graph`."""
    host_outputs = {op.output for op in host}
    sources = list(dict.fromkeys(t for op in host for t in op.inputs if t not in host_outputs))
    tail = QGraph(tensors=graph.tensors, ops=list(host), inputs=sources,
                  outputs=[t for t in graph.outputs if t in host_outputs], name=graph.name)
    done = reference.run(tail, {t: values[t] for t in sources})
    return {name: done[name] if name in done else values[name] for name in graph.outputs}
