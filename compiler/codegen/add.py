"""Lowering of `QAdd` (residual addition) to LOAD a / LOAD b / ADD / STORE.

Both inputs and the output have the same blocked layout, so the tensors are processed as flat
runs of buffer words: step by step, a and b each go to their own ping-pong input slot (four
slots of (ibuf_words - 2) // 4 words), the ADD writes a ring of output slots, and a STORE
writes the run back. Each tensor is read and written exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.config import AcceleratorConfig
from hw.isa import Activation, Add, Buffer

from ..errors import CompileError
from ..memory import Placement
from ..qgraph import QAdd, QGraph
from ..tiling import AddTiling, ibuf_slot_words, obuf_slots, plan_add, ranges
from .base import Lowering
from .context import CodegenContext, Ring

__all__ = ["AddPlan", "LOWERING"]


@dataclass(frozen=True)
class AddPlan:
    tiling: AddTiling
    a: Placement
    b: Placement
    dest: Placement
    words: int          #: buffer words of each tensor


def plan(op: QAdd, graph: QGraph, config: AcceleratorConfig,
         placements: dict[str, Placement]) -> AddPlan:
    a, b, dst = placements[op.a], placements[op.b], placements[op.output]
    where = {"node": op.name, "op_type": "Add"}
    if graph.tensors[op.a].shape != graph.tensors[op.b].shape:
        raise CompileError(f"inputs have shapes {graph.tensors[op.a].shape} and "
                           f"{graph.tensors[op.b].shape}; the element-wise unit needs equal "
                           "shapes", **where)
    for field, value, lo, hi in (("mult_a", op.mult_a, -(1 << 15), (1 << 15) - 1),
                                 ("mult_b", op.mult_b, -(1 << 15), (1 << 15) - 1),
                                 ("shift", op.shift, 0, 63)):
        if not lo <= value <= hi:
            raise CompileError(f"{field} {value} is outside the ADD field [{lo}, {hi}]", **where)
    words = a.groups * a.height * a.width
    return AddPlan(tiling=plan_add(config, total_words=words), a=a, b=b, dest=dst, words=words)


def cycles(p: AddPlan) -> int:
    return p.words


def macs(p: AddPlan) -> int:
    return 0


def emit(op: QAdd, p: AddPlan, ctx: CodegenContext) -> None:
    c, lanes = ctx.config, ctx.lanes
    if op.activation is Activation.LUT:
        ctx.load_lut(op.name, op.lut)
    slot = ibuf_slot_words(c, 4)
    ring_a = Ring(base=0, slot_words=slot, slots=2)
    ring_b = Ring(base=2 * slot, slot_words=slot, slots=2)
    obuf = Ring(base=0, slot_words=p.tiling.words, slots=obuf_slots(c, p.tiling.words))
    for start, count in ranges(p.words, p.tiling.words):
        ctx.stats.tiles += 1
        a_addr, b_addr, out_addr = ring_a.take(), ring_b.take(), obuf.take()
        ctx.load(Buffer.IBUF, a_addr, p.a.address + start * lanes, count)
        ctx.load(Buffer.IBUF, b_addr, p.b.address + start * lanes, count)
        reads = [(Buffer.IBUF, a_addr, a_addr + count), (Buffer.IBUF, b_addr, b_addr + count)]
        if op.activation is Activation.LUT:
            reads.append((Buffer.LUT, 0, c.lut_words))
        ctx.compute(Add(activation=op.activation, a_addr=a_addr, b_addr=b_addr, count=count,
                        obuf_addr=out_addr, mult_a=int(op.mult_a), mult_b=int(op.mult_b),
                        shift=int(op.shift)),
                    reads=reads, writes=[(Buffer.OBUF, out_addr, out_addr + count)])
        ctx.store(out_addr, p.dest.address + start * lanes, count)


LOWERING = Lowering(kind="add", plan=plan, cycles=cycles, macs=macs, emit=emit)
