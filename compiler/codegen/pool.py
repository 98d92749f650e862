"""Lowering of `QPool` (max, average, global average) to LOAD / POOL / STORE.

    for each channel-block tile, for each output tile (rows x columns):
      LOAD input tile with its halo (3-D DMA)   -> ping-pong input slot
      POOL                                      -> ring of output slots
      STORE the output tile (3-D DMA, one plane per channel block)

Pooling is per channel, so the output keeps the input's channel layout (channel map included).
Global average pooling needs a whole plane of a channel block in one input slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from hw.config import AcceleratorConfig
from hw.isa import Buffer, Pool, PoolKind

from ..errors import CompileError
from ..memory import Placement
from ..qgraph import QGraph, QPool
from ..tiling import PoolTiling, Window, ibuf_slot_words, input_window, obuf_slots, \
    plan_pool, ranges
from .base import Lowering
from .context import CodegenContext, Ring

__all__ = ["PoolPlan", "LOWERING"]


@dataclass(frozen=True)
class PoolPlan:
    tiling: PoolTiling
    source: Placement
    dest: Placement
    kind: PoolKind
    kernel: int
    stride: int
    pad_top: int
    pad_left: int
    out_h: int
    out_w: int


def plan(op: QPool, graph: QGraph, config: AcceleratorConfig,
         placements: dict[str, Placement]) -> PoolPlan:
    src, dst = placements[op.input], placements[op.output]
    _, h, w = graph.tensors[op.input].shape
    _, oh, ow = graph.tensors[op.output].shape
    where = {"node": op.name, "op_type": {PoolKind.MAX: "MaxPool", PoolKind.AVG: "AveragePool",
                                          PoolKind.GLOBAL_AVG: "GlobalAveragePool"}[op.kind]}
    if not -(1 << 15) <= op.mult < 1 << 15 or not 0 <= op.shift < 64:
        raise CompileError(f"mult {op.mult} / shift {op.shift} exceed the POOL fields (int16 "
                           "multiplier, shift 0..63)", **where)
    glob = op.kind is PoolKind.GLOBAL_AVG
    if not glob:
        if not 1 <= op.kernel <= config.max_kernel:
            raise CompileError(f"kernel {op.kernel} is outside 1..{config.max_kernel} (config "
                               "max_kernel)", **where)
        if not 1 <= op.stride <= config.max_stride:
            raise CompileError(f"stride {op.stride} is outside 1..{config.max_stride} (config "
                               "max_stride)", **where)
        if op.pads[0] >= op.kernel or op.pads[1] >= op.kernel:
            raise CompileError(f"padding {op.pads} must be smaller than the kernel", **where)
    try:
        tiling = plan_pool(config, groups=src.groups, height=h, width=w,
                           kernel=op.kernel, stride=op.stride, out_h=oh, out_w=ow,
                           global_avg=glob)
    except ValueError as exc:
        raise CompileError(str(exc), **where) from None
    return PoolPlan(tiling=tiling, source=src, dest=dst, kind=op.kind, kernel=op.kernel,
                    stride=op.stride, pad_top=op.pads[0], pad_left=op.pads[1], out_h=oh,
                    out_w=ow)


def _tiles(p: PoolPlan) -> Iterator[tuple[int, int, int, int, int, int, Window, Window]]:
    t, src = p.tiling, p.source
    for g0, gc in ranges(src.groups, t.groups):
        for oy0, th in ranges(p.out_h, t.tile_h):
            for ox0, tw in ranges(p.out_w, t.tile_w):
                if p.kind is PoolKind.GLOBAL_AVG:
                    rows, cols = Window(0, src.height, 0), Window(0, src.width, 0)
                else:
                    rows = input_window(oy0, th, stride=p.stride, pad=p.pad_top, offset=0,
                                        kernel=p.kernel, extent=src.height)
                    cols = input_window(ox0, tw, stride=p.stride, pad=p.pad_left, offset=0,
                                        kernel=p.kernel, extent=src.width)
                yield g0, gc, oy0, th, ox0, tw, rows, cols


def cycles(p: PoolPlan) -> int:
    if p.kind is PoolKind.GLOBAL_AVG:
        return p.source.groups * p.source.height * p.source.width
    return p.source.groups * p.out_h * p.out_w * p.kernel ** 2


def macs(p: PoolPlan) -> int:
    return 0


def emit(op: QPool, p: PoolPlan, ctx: CodegenContext) -> None:
    c, lanes, src, dst = ctx.config, ctx.lanes, p.source, p.dest
    glob = p.kind is PoolKind.GLOBAL_AVG
    slots = p.tiling.ibuf_slots
    ibuf = Ring(base=0, slot_words=ibuf_slot_words(c, slots), slots=slots)
    tile_words = p.tiling.groups * p.tiling.tile_h * p.tiling.tile_w
    obuf = Ring(base=0, slot_words=tile_words, slots=obuf_slots(c, tile_words))
    for g0, gc, oy0, th, ox0, tw, rows, cols in _tiles(p):
        ctx.stats.tiles += 1
        in_addr, out_addr = ibuf.take(), obuf.take()
        in_words, out_words = gc * rows.size * cols.size, gc * th * tw
        ctx.load(Buffer.IBUF, in_addr,
                 src.group_address(g0, lanes) + (rows.start * src.width + cols.start) * lanes,
                 size0=cols.size, count1=rows.size, stride1=src.width * lanes,
                 count2=gc, stride2=src.height * src.width * lanes)
        ctx.compute(Pool(
            kind=p.kind, ibuf_addr=in_addr, in_h=rows.size, in_w=cols.size, groups=gc,
            kernel=0 if glob else p.kernel, stride=0 if glob else p.stride,
            pad_top=rows.pad, pad_left=cols.pad, out_h=th, out_w=tw, obuf_addr=out_addr,
            mult=int(op.mult), shift=int(op.shift)),
            reads=[(Buffer.IBUF, in_addr, in_addr + in_words)],
            writes=[(Buffer.OBUF, out_addr, out_addr + out_words)])
        ctx.store(out_addr, dst.group_address(g0, lanes) + (oy0 * dst.width + ox0) * lanes,
                  size0=tw, count1=th, stride1=dst.width * lanes, count2=gc,
                  stride2=dst.height * dst.width * lanes)


LOWERING = Lowering(kind="pool", plan=plan, cycles=cycles, macs=macs, emit=emit)
