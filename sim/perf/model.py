"""`predict`: total, per-instruction and per-layer cycles and the CSR counters of a program."""

from __future__ import annotations

from dataclasses import dataclass, field

from hw.config import AcceleratorConfig
from hw.isa import Add, Load, Store
from hw.program import Program
from sim.dram_model import DramTiming

from .engine import simulate

__all__ = ["PerfResult", "predict", "layer_ranges", "is_barrier"]


@dataclass
class PerfResult:
    """What the model predicts; cycles count from the start pulse like the CSR CYCLES
    counter. `start[k]`: the cycle instruction k's unit took it; `end[k]`: the cycle of its
    unit's done strobe (END: the finish cycle); `dispatch[k]`: the cycle the dispatcher put
    it in its queue. `counters` has the CSR counters by name (hw.axi.csr.COUNTERS):
    array_busy (chunks into the array), weight_load (cycles a chunk waits at the array),
    load_wait / store_wait (the compute queue's head waits for a LOAD / STORE token),
    dependency_wait (some queue's head waits for a token). `layers`: per entry of
    program.layers, its instruction range, first start, last done and cycles between."""
    cycles: int
    counters: dict[str, int]
    start: list[int]
    end: list[int]
    dispatch: list[int]
    layers: list[dict] = field(default_factory=list)
    #: events the model's event order met after their cycle (0 in every test; if not 0 the
    #: model delayed them, an approximation)
    late_events: int = 0


def is_barrier(instr, config: AcceleratorConfig) -> bool:
    """A one-word dummy the token scheduler inserts (compiler/codegen/schedule.py)."""
    if isinstance(instr, Add):
        return instr.count == 1 and instr.a_addr == config.ibuf_words - 2 \
            and instr.obuf_addr == config.obuf_words - 1
    if isinstance(instr, Load):
        return instr.size0 == 1 and instr.buf_addr == config.ibuf_words - 1
    if isinstance(instr, Store):
        return instr.size0 == 1 and instr.buf_addr == config.obuf_words - 2
    return False


def layer_ranges(program: Program) -> list[tuple[int, int]]:
    """[first, last] instruction index of each layer in program.layers: a layer owns its
    `instructions` non-barrier instructions and the barriers emitted among them."""
    out = []
    k = 0
    instrs = program.instructions
    for layer in program.layers:
        count = layer.get("instructions", 0)
        first = k
        seen = 0
        while seen < count and k < len(instrs) - 1:
            if not is_barrier(instrs[k], program.config):
                seen += 1
            k += 1
        out.append((first, k - 1))
    return out


def predict(program: Program, timing: DramTiming = DramTiming()) -> PerfResult:
    tl = simulate(program, timing)
    counters = {"cycles": tl.cycles, "array_busy": tl.array_busy, "load_wait": tl.load_wait,
                "store_wait": tl.store_wait, "weight_load": tl.weight_load,
                "dependency_wait": tl.dependency_wait}
    layers = []
    for layer, (first, last) in zip(program.layers, layer_ranges(program)):
        if last < first:
            layers.append({"name": layer["name"], "first": first, "last": last, "cycles": 0})
            continue
        begin = min(tl.start[first:last + 1])
        end = max(tl.done[first:last + 1])
        layers.append({"name": layer["name"], "first": first, "last": last,
                       "start": begin, "end": end, "cycles": end - begin})
    return PerfResult(cycles=tl.cycles, counters=counters, start=tl.start, end=tl.done,
                      dispatch=tl.dispatch, layers=layers, late_events=tl.late)
