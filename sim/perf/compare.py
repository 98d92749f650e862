"""Model against RTL: per-instruction done cycles from a run's retire trace."""

from __future__ import annotations

from hw.isa import Queue
from hw.program import Program
from sim.rtl_result import RtlResult

from .engine import queue_of_instr

__all__ = ["rtl_done_cycles"]

_BITS = {Queue.LOAD: 1, Queue.COMPUTE: 2, Queue.STORE: 4}


def rtl_done_cycles(program: Program, rtl: RtlResult) -> list[int | None]:
    """The cycle (counted like the CYCLES counter, from the start pulse) of each
    instruction's done strobe in an RTL run; None for END. The retire trace counts from the
    end of reset; the run finishes the cycle after its last done strobe (END waits for every
    unit), which fixes the offset between the two."""
    times = {q: [c for c, mask in rtl.retirements if mask & bit] for q, bit in _BITS.items()}
    last = max(c for c, _ in rtl.retirements)
    offset = last + 1 - rtl.cycles
    out: list[int | None] = []
    seen = {q: 0 for q in Queue}
    for instr in program.instructions:
        q = queue_of_instr(instr)
        if q is None:
            out.append(None)
            continue
        lst = times[q]
        out.append(lst[seen[q]] - offset if seen[q] < len(lst) else None)
        seen[q] += 1
    return out
