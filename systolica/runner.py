"""Run a compiled network on float images with any backend, image by image.

`run_network(program, x, backend)` quantizes each float32 NCHW image with the input scale, runs
it, applies the host-tail ops (softmax, LRN under --host-fallback), dequantizes the outputs to
float32 and reshapes them to the shapes the model declares. Backends:

- `reference`: the golden model (compiler/reference.py) on the quantized graph the program
  carries (no cycles: the per-layer table shows the compiler's estimate, marked as such);
- `isa`: the functional model of the instruction set (no cycles either);
- `amaranth`, `verilator`: the RTL, cycle-accurate; per-layer cycles come from the retirement
  trace (`layer_cycles`);
- `perf`: outputs from the functional model, cycles and counters from the cycle model
  (sim/perf, equal to the RTL's; `perf_result` presents its prediction like an RTL run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from compiler import reference
from compiler.host_split import run_host_tail, split_host_tail
from compiler.qgraph import QGraph
from compiler.qgraph_io import ATTACHMENT, qgraph_from_bytes
from hw.isa import ErrorCode, Queue
from hw.program import Program, ProgramError
from sim.dram_model import DramTiming
from sim.program_run import MACHINE_BACKENDS, run_program
from sim.rtl_result import RtlResult

from .pipeline import MODEL_META

__all__ = ["BACKENDS", "CYCLE_BACKENDS", "RunInputError", "ImageRun", "NetworkRun",
           "load_qgraph", "layer_cycles", "run_network"]

BACKENDS = ("reference", *MACHINE_BACKENDS, "perf")
#: Backends that give cycles: the RTL measures them, the cycle model predicts them (the others
#: leave them to the compiler's estimate).
CYCLE_BACKENDS = ("amaranth", "verilator", "perf")


class RunInputError(ValueError):
    """A backend name or input array `run_network` cannot accept (checked before running)."""


@dataclass
class ImageRun:
    """One image: int8 outputs by name (every output of the network, [C, H, W]), wall time,
    and for the RTL backends the result and the per-layer cycles."""
    outputs: dict[str, np.ndarray]
    seconds: float
    rtl: RtlResult | None = None
    layer_cycles: list[int] | None = None


@dataclass
class NetworkRun:
    """A batch: float32 outputs stacked over the batch ([N, *declared shape[1:]]) by output
    name, the per-image runs, and what produced them."""
    backend: str
    program: Program
    outputs: dict[str, np.ndarray]
    images: list[ImageRun]
    timing: DramTiming
    seconds: float
    int8: dict[str, np.ndarray] = field(default_factory=dict)   #: [N, C, H, W] by name

    @property
    def measured(self) -> bool:
        """Cycles come from the RTL or the cycle model (not the compiler's estimate)."""
        return self.backend in CYCLE_BACKENDS

    @property
    def cycles_source(self) -> str:
        """"measured" (RTL), "model" (sim/perf) or "estimate" (compiler)."""
        return {"perf": "model"}.get(self.backend, "measured" if self.measured else "estimate")


def load_qgraph(program: Program) -> QGraph:
    """The quantized graph the program carries; ProgramError when missing or malformed."""
    blob = program.attachments.get(ATTACHMENT)
    if blob is None:
        raise ProgramError(f"the program carries no {ATTACHMENT!r} attachment (compile it "
                           "with `systolica compile`)")
    try:
        return qgraph_from_bytes(blob)
    except ValueError as exc:
        raise ProgramError(str(exc)) from None


def perf_result(program: Program, timing: DramTiming, isa_run) -> RtlResult:
    """The cycle model's prediction in the shape of an RTL run: CSR counters, and a retirement
    trace built from the predicted done cycle of every instruction (so `layer_cycles` applies
    unchanged); DRAM bytes as the functional model counted them."""
    from sim.perf import predict

    predicted = predict(program, timing)
    retirements: dict[int, int] = {}
    for index, instr in enumerate(program.instructions):
        if instr.queue is not None:
            cycle = predicted.end[index]
            retirements[cycle] = retirements.get(cycle, 0) | 1 << instr.queue.value
    values = {"error_code": 0, "error_index": 0, **predicted.counters,
              "cycles": predicted.cycles}
    return RtlResult.from_registers(values, read_bytes=isa_run.stats.dram_read_bytes,
                                    write_bytes=isa_run.stats.dram_write_bytes,
                                    retirements=sorted(retirements.items()))


def layer_cycles(program: Program, rtl: RtlResult) -> list[int]:
    """Cycles of each layer of `program.layers` from the RTL's retirement trace.

    The k-th retirement of a queue (load, compute, store) is the k-th instruction of that queue
    in program order. A layer's instructions are [first_instruction, next layer's
    first_instruction) (its token barriers included; END retires nowhere), and the layer ends
    at the latest retirement of its instructions and of every earlier layer's (so a layer whose
    work finished under the previous one's shadow counts 0 cycles, never a negative number).
    Layer i > 0 takes end(i) - end(i - 1). The first layer takes the rest of rtl.cycles:
    rtl.cycles - (end(last) - end(first)), i.e. from START through its own end plus the few
    cycles from the last retirement to done (END and the done flag), which the trace cannot
    place in time. So the per-layer cycles sum exactly to rtl.cycles.
    """
    layers = program.layers
    if not layers:
        return []
    counts = {q: 0 for q in Queue}
    retire_of_queue: dict[Queue, list[int]] = {q: [] for q in Queue}
    for cycle, mask in rtl.retirements:
        for q in Queue:
            if mask >> q.value & 1:
                retire_of_queue[q].append(cycle)
    retired_at: list[int] = []
    for instr in program.instructions:
        q = instr.queue
        if q is None:
            break
        if counts[q] >= len(retire_of_queue[q]):
            raise ValueError(f"the retirement trace has {len(retire_of_queue[q])} "
                             f"{q.name.lower()} retirements; the program has more")
        retired_at.append(retire_of_queue[q][counts[q]])
        counts[q] += 1
    starts = [int(layer["first_instruction"]) for layer in layers] + [len(retired_at)]
    ends: list[int] = []
    latest = None
    for start, stop in zip(starts, starts[1:]):
        mine = retired_at[start:stop]
        if mine:
            latest = max(mine) if latest is None else max(latest, max(mine))
        ends.append(latest)
    first_end = next((e for e in ends if e is not None), None)
    if first_end is None:
        return [rtl.cycles] + [0] * (len(layers) - 1)
    ends = [first_end if e is None else e for e in ends]
    cycles = [e - p for p, e in zip(ends, ends[1:])]
    return [rtl.cycles - sum(cycles)] + cycles


def _check_input(program: Program, x: np.ndarray) -> tuple[str, float]:
    model = program.meta.get(MODEL_META)
    if model is None:
        raise ProgramError(f"the program has no meta[{MODEL_META!r}] (compile it with "
                           "`systolica compile`)")
    name, shape, scale = model["input"]["name"], tuple(model["input"]["shape"]), \
        float(model["input"]["scale"])
    want = f"float32 [N, {', '.join(map(str, shape[1:]))}] (NCHW, N >= 1)"
    if x.ndim != 4 or x.shape[1:] != shape[1:] or len(x) == 0 or x.dtype.kind not in "fiu":
        raise RunInputError(f"input must be {want}, not {x.dtype} {list(x.shape)}")
    if not np.isfinite(x).all():
        raise RunInputError("input contains NaN or infinite values")
    return name, scale


def run_network(program: Program, x: np.ndarray, backend: str, *,
                timing: DramTiming = DramTiming(), progress: bool | None = None,
                qgraph: QGraph | None = None) -> NetworkRun:
    """Run float32 NCHW images `x` (any batch) one after another on `backend` (BACKENDS).

    `progress`: a tqdm bar on stderr; None shows it for more than one image or an RTL
    backend. `qgraph`: the program's quantized graph when the caller already loaded it.
    Raises RunInputError for a bad backend or input and ProgramError for a program that was
    not compiled by `systolica compile` (`compile_network`), both before anything runs."""
    if backend not in BACKENDS:
        raise RunInputError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    x = np.asarray(x)
    name, scale = _check_input(program, x)
    graph = load_qgraph(program) if qgraph is None else qgraph
    _, host = split_host_tail(graph)
    declared = program.meta[MODEL_META]["outputs"]
    if progress is None:
        progress = len(x) > 1 or backend in CYCLE_BACKENDS
    indices = range(len(x))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"{backend}", unit="image", leave=False)
    images: list[ImageRun] = []
    start = time.perf_counter()
    for i in indices:
        q = reference.quantize_tensor(x[i], scale)
        images.append(_run_image(program, graph, host, {name: q}, backend, timing))
    seconds = time.perf_counter() - start
    int8 = {o["name"]: np.stack([im.outputs[o["name"]] for im in images]) for o in declared}
    outputs = {o["name"]: reference.dequantize_tensor(int8[o["name"]],
                                                      graph.tensors[o["name"]].scale)
               .reshape(len(x), *o["shape"][1:]) for o in declared}
    return NetworkRun(backend=backend, program=program, outputs=outputs, images=images,
                      timing=timing, seconds=seconds, int8=int8)


def _run_image(program: Program, graph: QGraph, host: list, inputs: dict[str, np.ndarray],
               backend: str, timing: DramTiming) -> ImageRun:
    start = time.perf_counter()
    if backend == "reference":
        values = reference.run(graph, inputs, acc_bits=program.config.acc_bits)
        return ImageRun(outputs={n: values[n] for n in graph.outputs},
                        seconds=time.perf_counter() - start)
    if backend == "perf":
        run = run_program(program, inputs, "isa")
        run.rtl = perf_result(program, timing, run)
    else:
        run = run_program(program, inputs, backend, timing=timing)
    if run.rtl is not None and run.rtl.error is not ErrorCode.NONE:
        raise RuntimeError(f"the accelerator stopped with error {run.rtl.error.name} at "
                           f"instruction {run.rtl.error_index}")
    outputs = run_host_tail(graph, host, run.outputs) if host else \
        {n: run.outputs[n] for n in graph.outputs}
    per_layer = None if run.rtl is None else layer_cycles(program, run.rtl)
    return ImageRun(outputs=outputs, seconds=time.perf_counter() - start, rtl=run.rtl,
                    layer_cycles=per_layer)
