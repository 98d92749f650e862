"""Lowering of `QConv` (convolutions and fully connected layers) to LOAD / CONV / STORE.

Loop nest per layer (tile sizes from compiler/tiling.py):

    for each output tile (rows x columns):
      for each group of output blocks          # all of them unless the accumulator is short
       for each kernel piece (sy, sx)          # 1 x 1 unless K > max_kernel
        for each input-channel tile ci:
          LOAD input tile (3-D DMA: columns, rows, channel blocks)  -> ping-pong input slot
          for each output block ob of the group:   # `lanes` output channels
            for each pass p over <= contexts chunks of the (ky, kx, block) window
                (near-equal passes, tiling.pass_ranges):
              LOAD weight set (sy, sx, ci, ob, p)  unless resident in the weight buffer
              CONV accumulate = not the first pass of ob, output = its last pass
            (last pass) STORE the output tile of ob    -> ring of output slots

A 1x1 convolution with stride s > 1 and no padding reads only every s-th row and column. Its
input tiles are loaded subsampled (one LOAD per channel block, one word per DMA row, rows and
columns s apart) and the array runs it as a 1x1 stride-1 convolution: the window generator
streams every word of an input tile once per pass, so a stride-2 tile streamed whole is about
four words per chunk, and even a 1-column tile (the best whole-tile choice) two. ResNet-50's
1024 -> 2048 at 14x14 stride 2 took 1.23 M cycles for 0.40 M chunks (32.6% busy), subsampled
0.41 M (99.0%, DRAM at 8 bytes per cycle). A DMA row of one word costs an AXI burst of one
beat, which the output blocks that reuse each input tile (32 to 128 here) hide.

Weights are stored in DRAM as the exact weight-buffer words of each set, in first-use order:
word (d, col) of a set holds, for its chunk d = (ky, kx, block), the `lanes` weights of output
channel ob*lanes + col over the block's physical input channels (zero for padding channels and
for the channel-map gaps of concatenated inputs). Parameters are one word per output block.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hw.arith import pack_params
from hw.config import AcceleratorConfig
from hw.isa import Activation, Buffer, Conv

from ..errors import CompileError
from ..memory import Placement
from ..qgraph import QConv, QGraph
from ..tiling import ConvTiling, Window, ibuf_slot_words, input_window, obuf_slots, \
    pass_ranges, plan_conv, ranges
from .base import Lowering
from .context import CodegenContext, Ring, SlotCache

__all__ = ["ConvPlan", "LOWERING"]


@dataclass(frozen=True)
class ConvPlan:
    tiling: ConvTiling
    source: Placement
    dest: Placement
    in_channels: int
    out_channels: int
    kernel: int
    stride: int          #: the CONV instructions' stride (1 when subsampled)
    subsample: int       #: rows and columns the LOADs step over (1, or a 1x1's stride)
    in_h: int            #: rows and columns of the input the CONVs see (subsampled)
    in_w: int
    pad_top: int
    pad_left: int
    out_h: int
    out_w: int
    contexts: int


@dataclass(frozen=True)
class _Piece:
    """One input tile of an output tile: a kernel piece over one input-channel tile."""
    sy: int
    sx: int
    ci: int
    group0: int
    groups: int
    rows: Window
    cols: Window


def plan(op: QConv, graph: QGraph, config: AcceleratorConfig,
         placements: dict[str, Placement]) -> ConvPlan:
    src, dst = placements[op.input], placements[op.output]
    cin, h, w = graph.tensors[op.input].shape
    cout, oh, ow = graph.tensors[op.output].shape
    k = op.kernel
    if op.weight.shape != (cout, cin, k, k):
        raise CompileError(f"weight shape {op.weight.shape} does not match {cout} outputs x "
                           f"{cin} inputs x {k}x{k}", node=op.name, op_type="Conv")
    if not 1 <= op.stride <= config.max_stride:
        raise CompileError(f"stride {op.stride} is outside 1..{config.max_stride} (config "
                           "max_stride)", node=op.name, op_type="Conv")
    top, left = op.pads[0], op.pads[1]
    # A 1x1 kernel with stride s and no padding reads rows and columns 0, s, 2s, ...: load
    # only those and run it with stride 1 (ceil(h / s) = oh rows).
    sub = op.stride if k == 1 and op.stride > 1 and not any(op.pads) else 1
    stride, in_h, in_w = op.stride // sub, -(-h // sub), -(-w // sub)
    try:
        tiling = plan_conv(config, in_groups=src.groups, height=in_h, width=in_w,
                           kernel=k, stride=stride, out_h=oh, out_w=ow,
                           out_blocks=-(-cout // config.lanes))
    except ValueError as exc:
        raise CompileError(str(exc), node=op.name, op_type="Conv") from None
    if top >= tiling.kernel or left >= tiling.kernel:
        raise CompileError(f"padding {op.pads} must be smaller than the kernel piece "
                           f"({tiling.kernel}) the array runs", node=op.name, op_type="Conv")
    return ConvPlan(tiling=tiling, source=src, dest=dst, in_channels=cin, out_channels=cout,
                    kernel=k, stride=stride, subsample=sub, in_h=in_h, in_w=in_w, pad_top=top,
                    pad_left=left, out_h=oh, out_w=ow, contexts=config.contexts)


def _output_tiles(p: ConvPlan) -> Iterator[tuple[int, int, int, int]]:
    for oy0, th in ranges(p.out_h, p.tiling.tile_h):
        for ox0, tw in ranges(p.out_w, p.tiling.tile_w):
            yield oy0, th, ox0, tw


def _pieces(p: ConvPlan, oy0: int, th: int, ox0: int, tw: int) -> list[_Piece]:
    t = p.tiling
    out = []
    for sy in range(t.splits):
        rows = input_window(oy0, th, stride=p.stride, pad=p.pad_top, offset=sy * t.kernel,
                            kernel=t.kernel, extent=p.in_h)
        for sx in range(t.splits):
            cols = input_window(ox0, tw, stride=p.stride, pad=p.pad_left, offset=sx * t.kernel,
                                kernel=t.kernel, extent=p.in_w)
            if rows.size == 0 or cols.size == 0:
                continue        # this piece reads only padding for this tile: it adds nothing
            for ci, (g0, gc) in enumerate(ranges(t.in_groups, t.cin_groups)):
                out.append(_Piece(sy, sx, ci, g0, gc, rows, cols))
    return out


def _passes(p: ConvPlan, groups: int) -> list[tuple[int, int]]:
    return pass_ranges(p.tiling.kernel ** 2 * groups, p.contexts)


def cycles(p: ConvPlan) -> int:
    total = 0
    for oy0, th, ox0, tw in _output_tiles(p):
        for piece in _pieces(p, oy0, th, ox0, tw):
            total += p.tiling.out_blocks * th * tw * p.tiling.kernel ** 2 * piece.groups
    return total


def macs(p: ConvPlan) -> int:
    return p.out_channels * p.in_channels * p.kernel ** 2 * p.out_h * p.out_w


def _physical_weights(op: QConv, p: ConvPlan, lanes: int) -> np.ndarray:
    """[out blocks, column, in blocks, lane, Kp, Kp] with Kp = splits * piece side."""
    t = p.tiling
    kp = t.splits * t.kernel
    wp = np.zeros((t.out_blocks * lanes, t.in_groups * lanes, kp, kp), np.int8)
    phys = np.asarray(p.source.physical_map(p.in_channels))
    wp[:p.out_channels, phys, :p.kernel, :p.kernel] = op.weight
    return wp.reshape(t.out_blocks, lanes, t.in_groups, lanes, kp, kp)


def _weight_set(wp: np.ndarray, p: ConvPlan, piece: _Piece, ob: int, k0: int,
                count: int) -> bytes:
    """Weight-buffer words [chunk, column, lane] of one pass."""
    ks, gc = p.tiling.kernel, piece.groups
    k = np.arange(k0, k0 + count)
    ky, rest = np.divmod(k, ks * gc)
    kx, g = np.divmod(rest, gc)
    words = wp[ob][:, piece.group0 + g, :, piece.sy * ks + ky, piece.sx * ks + kx]
    return np.ascontiguousarray(words).tobytes()          # [count, column, lane]


def _params(op: QConv, p: ConvPlan, lanes: int) -> bytes:
    n = p.tiling.out_blocks * lanes

    def padded(values: np.ndarray, dtype: type) -> np.ndarray:
        out = np.zeros(n, dtype)
        out[:p.out_channels] = values
        return out

    return pack_params(padded(op.bias, np.int64), padded(op.mult, np.int64),
                       padded(op.shift, np.int64))


def _load_input(ctx: CodegenContext, p: ConvPlan, piece: _Piece, in_addr: int) -> None:
    """LOAD an input tile, [block][row][column] from `in_addr`."""
    src, lanes, s = p.source, ctx.lanes, p.subsample
    row_bytes, plane_bytes = src.width * lanes, src.height * src.width * lanes
    first = (piece.rows.start * s * src.width + piece.cols.start * s) * lanes
    if s == 1:
        ctx.load(Buffer.IBUF, in_addr, src.group_address(piece.group0, lanes) + first,
                 size0=piece.cols.size, count1=piece.rows.size, stride1=row_bytes,
                 count2=piece.groups, stride2=plane_bytes)
        return
    plane_words = piece.rows.size * piece.cols.size
    for g in range(piece.groups):
        ctx.load(Buffer.IBUF, in_addr + g * plane_words,
                 src.group_address(piece.group0 + g, lanes) + first,
                 size0=1, count1=piece.cols.size, stride1=s * lanes,
                 count2=piece.rows.size, stride2=s * row_bytes)


def emit(op: QConv, p: ConvPlan, ctx: CodegenContext) -> None:
    c, lanes, t = ctx.config, ctx.lanes, p.tiling
    dst = p.dest
    if op.activation is Activation.LUT:
        ctx.load_lut(op.name, op.lut)
    wp = _physical_weights(op, p, lanes)

    # Weight sets in first-use order; the first output tile uses every set any tile uses
    # except pieces that read only padding there, so collect over all tiles.
    sets: dict[tuple[int, int, int, int, int], bytes] = {}
    for oy0, th, ox0, tw in _output_tiles(p):
        for ob0, obn in ranges(t.out_blocks, t.ob_group):
            for piece in _pieces(p, oy0, th, ox0, tw):
                for ob in range(ob0, ob0 + obn):
                    for pi, (k0, kc) in enumerate(_passes(p, piece.groups)):
                        key = (piece.sy, piece.sx, piece.ci, ob, pi)
                        if key not in sets:
                            sets[key] = _weight_set(wp, p, piece, ob, k0, kc)
    base = ctx.constant(f"{op.name}.weights", b"".join(sets.values()))
    weight_addr, offset = {}, 0
    for key, blob in sets.items():
        weight_addr[key] = base + offset
        offset += len(blob)
    param_addr = ctx.constant(f"{op.name}.params", _params(op, p, lanes))

    resident_params = t.out_blocks <= c.pbuf_words
    if resident_params:
        ctx.load(Buffer.PBUF, 0, param_addr, t.out_blocks)
    pcache = SlotCache(base=0, slot_words=1, slots=c.pbuf_words)
    wcache = SlotCache(base=0, slot_words=c.weight_set_words,
                       slots=c.wbuf_words // c.weight_set_words)
    ibuf = Ring(base=0, slot_words=ibuf_slot_words(c, 2), slots=2)
    tile_pixels = t.tile_h * t.tile_w
    obuf = Ring(base=0, slot_words=tile_pixels, slots=obuf_slots(c, tile_pixels))

    for oy0, th, ox0, tw in _output_tiles(p):
        ctx.stats.tiles += 1
        pixels = th * tw
        pieces = _pieces(p, oy0, th, ox0, tw)
        if not pieces:
            raise CompileError(f"output rows {oy0}..{oy0 + th - 1}, columns {ox0}.."
                               f"{ox0 + tw - 1} read only padding (bottom/right padding of "
                               "a kernel or more)", node=op.name, op_type="Conv")
        for ob0, obn in ranges(t.out_blocks, t.ob_group):
            for n, piece in enumerate(pieces):
                in_addr = ibuf.take()
                in_words = piece.groups * piece.rows.size * piece.cols.size
                _load_input(ctx, p, piece, in_addr)
                passes = _passes(p, piece.groups)
                for ob in range(ob0, ob0 + obn):
                    acc_addr = (ob - ob0) * pixels if t.separate_acc else 0
                    for pi, (k0, kc) in enumerate(passes):
                        key = (piece.sy, piece.sx, piece.ci, ob, pi)
                        w_addr, missing = wcache.get(key)
                        if missing:
                            ctx.load(Buffer.WBUF, w_addr, weight_addr[key], kc * c.columns)
                        last = n == len(pieces) - 1 and pi == len(passes) - 1
                        reads = [(Buffer.IBUF, in_addr, in_addr + in_words),
                                 (Buffer.WBUF, w_addr, w_addr + kc * c.columns)]
                        writes = []
                        out_addr = p_addr = 0
                        if last:
                            if resident_params:
                                p_addr = ob
                            else:
                                p_addr, missing = pcache.get(ob)
                                if missing:
                                    ctx.load(Buffer.PBUF, p_addr,
                                             param_addr + ob * c.pbuf_word_bytes, 1)
                            out_addr = obuf.take()
                            reads.append((Buffer.PBUF, p_addr, p_addr + 1))
                            if op.activation is Activation.LUT:
                                reads.append((Buffer.LUT, 0, c.lut_words))
                            writes.append((Buffer.OBUF, out_addr, out_addr + pixels))
                        ctx.compute(Conv(
                            accumulate=int(not (n == 0 and pi == 0)), output=int(last),
                            activation=op.activation if last else Activation.NONE,
                            ibuf_addr=in_addr, in_h=piece.rows.size, in_w=piece.cols.size,
                            in_groups=piece.groups, kernel=t.kernel, stride=p.stride,
                            pad_top=piece.rows.pad, pad_left=piece.cols.pad, out_h=th, out_w=tw,
                            chunk_start=k0, chunk_count=kc, wbuf_addr=w_addr, acc_addr=acc_addr,
                            obuf_addr=out_addr, pbuf_addr=p_addr), reads=reads, writes=writes)
                        if last:
                            ctx.store(out_addr, dst.group_address(ob, lanes)
                                      + (oy0 * dst.width + ox0) * lanes,
                                      size0=tw, count1=th, stride1=dst.width * lanes)


LOWERING = Lowering(kind="conv", plan=plan, cycles=cycles, macs=macs, emit=emit)
