"""Tile choice: which part of a layer one pass of the machine works on, sized to the buffers.

Buffers are split the same way for every layer (the top two input- and output-buffer words are
the token barriers' scratch words, see codegen/schedule.py):

- input buffer: two slots (ping-pong) of (ibuf_words - 2) // 2 words; an add uses four (a and
  b, twice);
- output buffer: a ring of as many output tiles as fit in obuf_words - 2 (at least two);
- weight buffer: a ring of contexts x columns-word weight sets; when every weight set of a
  layer fits, they stay resident and each is loaded once;
- parameter buffer: one word per output block, resident when they all fit, else a ring;
- accumulator: one output tile, or one per output block when the reduction is split over
  input-channel tiles or kernel pieces (the accumulation of those passes must survive); when
  that leaves too few pixels per tile, one per block of a group of output blocks, each group
  running the input tiles again (`ConvTiling.ob_group`).

Convolution: an output tile is `tile_h x tile_w` pixels of every output block; its input tile
is the rows and columns those pixels read (a halo of kernel - stride rows/columns overlaps
the neighbouring tiles), clipped to the image: the CONV pad fields are non-zero only where the
tile touches the top/left image edge, and the bottom/right padding is implied by out_h/out_w.
Kernels larger than `max_kernel` are cut into `splits x splits` square pieces of side
ceil(K / splits) (zero-filled past K), each a CONV over a shifted input tile, all accumulated.
The search tries every input-channel tile (`cin_groups` blocks of `lanes` channels) and
output tile width, takes the tallest tile that fits (then evens the tile heights out), and
estimates its cycles: the longer of the array's (`conv_pass_cycles`) and the DRAM reads' at
`plan_dram_rate` bytes per cycle. Among the choices within 1% of the fewest (the estimate is
no finer) it keeps the least estimated DRAM traffic (input with halos + weights times the
number of spatial tiles unless resident + `BURST` per DMA row, so that wide rows win ties),
then the fewest estimated cycles, then the fewest tiles. Least traffic alone picks, for
ResNet-18's 512 -> 512 at 7x7, all 32 channel blocks in one input tile (no separate
accumulator tiles, the most pixels per tile): each pass streams 1,568 input words for 784
chunks, 50% busy, where one block per input tile moves the same bytes at 99.5%.

Each input tile's (ky, kx, block) window is cut into passes of at most `contexts` chunks of
near-equal size (`pass_ranges`): 18 chunks run as 9 + 9, not 16 + 2, because a pass shorter
than the next pass's weight load stalls the array (see `conv_pass_cycles`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

from hw.config import AcceleratorConfig

__all__ = ["MAX_SIDE", "BURST", "RESERVED_WORDS", "Window", "input_window", "ConvTiling",
           "PoolTiling", "AddTiling", "ibuf_slot_words", "obuf_usable_words", "obuf_slots",
           "plan_conv", "plan_pool", "plan_add", "ranges", "pass_ranges", "conv_pass_cycles",
           "plan_dram_rate"]

#: in_h, in_w, out_h and out_w are 10-bit instruction fields.
MAX_SIDE = 1023


#: Cost of starting one DMA row, in byte-equivalents: a row is one AXI burst sequence, and
#: ~64 bytes of bus time per burst start makes the search prefer wide rows when traffic ties.
BURST = 64

#: Words at the top of the input and output buffers kept for the token barriers.
RESERVED_WORDS = 2


def ibuf_slot_words(config: AcceleratorConfig, slots: int) -> int:
    return (config.ibuf_words - RESERVED_WORDS) // slots


def obuf_usable_words(config: AcceleratorConfig) -> int:
    return config.obuf_words - RESERVED_WORDS


def obuf_slots(config: AcceleratorConfig, tile_words: int) -> int:
    """Output tiles in the output-buffer ring. At most token_depth: the compute queue then
    waits for the store of tile n - slots (a buffer hazard) before it pushes the token of tile
    n, which is exactly what keeps the COMPUTE->STORE counter within the token depth without
    extra barrier instructions."""
    return max(1, min(obuf_usable_words(config) // tile_words, config.token_depth))


def ranges(total: int, step: int) -> list[tuple[int, int]]:
    """(start, count) pieces of [0, total) of at most `step`."""
    return [(s, min(step, total - s)) for s in range(0, total, step)]


def plan_dram_rate(config: AcceleratorConfig) -> int:
    """DRAM read bytes per cycle the tiling plans for: half the AXI data bus (8 for `default`,
    the rate of issue 7's utilization target), a bus shared with stores and instruction
    fetch and rarely fed at its peak."""
    return max(1, config.axi_data_bytes // 2)


def pass_ranges(chunks: int, contexts: int) -> list[tuple[int, int]]:
    """(chunk_start, chunk_count) of the fewest passes of at most `contexts` chunks covering
    [0, chunks), their sizes differing by at most one (the longer ones first)."""
    n = -(-chunks // contexts)
    size, longer = divmod(chunks, n)
    out, start = [], 0
    for i in range(n):
        count = size + (i < longer)
        out.append((start, count))
        start += count
    return out


def conv_pass_cycles(config: AcceleratorConfig, *, pixels: int, in_words: int,
                     counts: list[int], weights_resident: bool) -> int:
    """Estimated cycles of the passes with chunk counts `counts` over one input tile of
    `in_words` words for `pixels` output pixels, run back to back and repeated (the next
    pass after the last is the first again, as for the next output block).

    A pass takes the longest of (hw/units/compute.py, sim/perf/compute.py):
    - its chunks: pixels x chunk_count, one per cycle;
    - its input: the window generator streams the whole input tile through the line buffer
      once per pass, one word per cycle, 2 cycles between passes (the next pass's input
      streams during this pass). 512 -> 512 at 7x7 with all 32 channel blocks in one tile is
      1,570 cycles of input per pass of 784 chunks: 50% busy;
    - the next pass's weight load: its bank (two banks, alternating) is empty rows + columns
      cycles after the last chunk of the pass before this one, then takes chunk_count x
      columns words, one per cycle. A 2-chunk pass of 49 pixels (98 cycles) before a
      16-chunk pass (256 + 32 cycles) stalls the array 190 cycles;
    - unless the weights are resident, the next pass's weights from DRAM at
      `plan_dram_rate`: chunk_count x columns x lanes bytes, 4 KiB for 16 chunks on
      `default`, 512 cycles at 8 bytes per cycle -- more than a 28-pixel pass computes.
    """
    drain = config.rows + config.columns
    set_bytes = 0 if weights_resident else config.columns * config.lanes
    rate = plan_dram_rate(config)
    total = 0
    for i, count in enumerate(counts):
        following = counts[(i + 1) % len(counts)]
        total += max(pixels * count, in_words + 2, drain + config.columns * following,
                     -(-following * set_bytes // rate))
    return total


@dataclass(frozen=True)
class Window:
    """Input rows (or columns) of an output tile, clipped to the image."""
    start: int     #: first input row loaded
    size: int      #: rows loaded (0: the tile reads only padding)
    pad: int       #: the CONV/POOL pad field: rows of padding before `start`


def input_window(out_start: int, out_count: int, *, stride: int, pad: int, offset: int,
                 kernel: int, extent: int) -> Window:
    """Input rows read by output rows [out_start, out_start + out_count) of a kernel piece at
    `offset` within the full kernel, for an image of `extent` rows padded by `pad`."""
    first = out_start * stride - pad + offset
    end = (out_start + out_count - 1) * stride - pad + offset + kernel
    start, stop = max(0, first), min(extent, end)
    return Window(start=start, size=max(0, stop - start), pad=start - first)


def _side_candidates(total: int) -> list[int]:
    return sorted({-(-total // n) for n in range(1, total + 1)}, reverse=True)


def _tallest(limit: int, fits: Callable[[int], bool]) -> int:
    """Largest t in [1, limit] with fits(t) (fits is monotone), or 0."""
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True)
class ConvTiling:
    kernel: int          #: side of the kernel pieces the CONVs run (K, or ceil(K / splits))
    splits: int          #: kernel pieces per side (1 unless K > max_kernel)
    tile_h: int          #: output rows per tile
    tile_w: int          #: output columns per tile
    cin_groups: int      #: input channel blocks per input tile
    in_groups: int       #: input channel blocks of the whole input
    out_blocks: int
    ob_group: int        #: output blocks whose input tiles are run together (the accumulator
                         #: holds one tile per block of a group when `separate_acc`)
    weight_sets: int     #: distinct contexts x columns weight sets of the layer
    resident: bool       #: all weight sets stay in the weight buffer
    traffic: int         #: estimated DRAM bytes
    cycles: int          #: estimated cycles: array (`conv_pass_cycles`) or DRAM reads

    @property
    def separate_acc(self) -> bool:
        """The reduction spans several input tiles: keep one accumulator tile per block."""
        return self.splits * self.splits * -(-self.in_groups // self.cin_groups) > 1


def plan_conv(config: AcceleratorConfig, *, in_groups: int, height: int, width: int,
              kernel: int, stride: int, out_h: int, out_w: int, out_blocks: int) -> ConvTiling:
    c, lanes = config, config.lanes
    splits = -(-kernel // c.max_kernel)
    ks = -(-kernel // splits)
    slot = ibuf_slot_words(c, 2)
    obuf_half = obuf_usable_words(c) // 2
    wslots = c.wbuf_words // c.weight_set_words
    weight_bytes_total = out_blocks * lanes * in_groups * lanes * kernel * kernel
    weight_bytes_per_group = out_blocks * ks * ks * c.columns * lanes   # per input tile
    rate = plan_dram_rate(c)
    cands: list[ConvTiling] = []
    for gi in _side_candidates(in_groups):
        ncin = -(-in_groups // gi)
        tile_groups = [g for _, g in ranges(in_groups, gi)]    # blocks of each input tile
        passes = {g: [n for _, n in pass_ranges(ks * ks * g, c.contexts)] for g in tile_groups}
        sets = splits * splits * out_blocks * sum(len(passes[g]) for g in tile_groups)
        separate = splits * splits * ncin > 1
        # A split reduction keeps one accumulator tile per output block: all blocks (the
        # input tile is loaded once per output tile), or, for taller tiles, groups of
        # blocks that each load the input tiles again. 512 -> 2048 at 7x7 fits 2048 / 128 =
        # 16 pixels per tile with all blocks: its 2-row tiles need a 16-chunk weight load
        # (288 cycles) per 14 x 16 = 224-cycle pass; four groups of 32 blocks run 7x7 tiles.
        for tw, all_blocks in product(_side_candidates(out_w), (True, False) if separate
                                      else (True,)):
            if tw > MAX_SIDE:
                continue
            in_w = min((tw - 1) * stride + ks, width)
            if in_w * gi > c.line_buffer_words or in_w > MAX_SIDE:
                continue
            acc_blocks = out_blocks if separate and all_blocks else 1

            def fits(th: int, tw: int = tw, in_w: int = in_w, gi: int = gi,
                     acc_blocks: int = acc_blocks) -> bool:
                in_h = min((th - 1) * stride + ks, height)
                pixels = th * tw
                return (in_h <= MAX_SIDE and gi * in_h * in_w <= slot and pixels <= obuf_half
                        and pixels * acc_blocks <= c.acc_words)

            th = _tallest(min(out_h, MAX_SIDE), fits)
            if th == 0:
                continue
            # As many tiles as the tallest, but evenly tall: 14 rows in 9 + 5 load 11 + 7
            # input rows of a 3x3 kernel, in 7 + 7 they load 9 + 9 (fewer halo rows counted
            # in the traffic, smaller accumulator tiles).
            ny, nx = -(-out_h // th), -(-out_w // tw)
            th = -(-out_h // ny)
            ob_group = out_blocks
            if separate:
                ob_group = min(out_blocks, c.acc_words // (th * tw))
                ob_group = -(-out_blocks // -(-out_blocks // ob_group))     # evened out
                if not all_blocks and ob_group == out_blocks:
                    continue        # the same tiling as with all blocks
            obg_sizes = Counter(n for _, n in ranges(out_blocks, ob_group))
            n_obg = -(-out_blocks // ob_group)
            in_h = min((th - 1) * stride + ks, height)
            resident = sets <= wslots
            traffic = (n_obg * ny * nx * splits * splits * in_groups * in_h
                       * (in_w * lanes + BURST)
                       + weight_bytes_total * (1 if resident else ny * nx))
            # The first input tile's load (a bus beat per word) is not hidden behind compute.
            cycles = gi * in_h * in_w
            row_sizes = Counter(n for _, n in ranges(out_h, th))
            col_sizes = Counter(n for _, n in ranges(out_w, tw))
            for (rows, row_tiles), (cols, col_tiles) in product(row_sizes.items(),
                                                                col_sizes.items()):
                tile_in = min((rows - 1) * stride + ks, height) * min((cols - 1) * stride + ks,
                                                                      width)
                compute = {g: conv_pass_cycles(
                    c, pixels=rows * cols, in_words=g * tile_in, counts=passes[g],
                    weights_resident=resident) for g in passes}
                # Two input slots: the next input tile (and, unless resident, this one's
                # weights) loads while this one computes.
                cycles += splits * splits * row_tiles * col_tiles * sum(
                    groups * sum(
                        max(blocks * compute[g], -(-(following * tile_in * lanes + (
                            0 if resident else weight_bytes_per_group * g * blocks // out_blocks))
                            // rate))
                        for g, following in zip(tile_groups,
                                                tile_groups[1:] + tile_groups[:1]))
                    for blocks, groups in obg_sizes.items())
            cands.append(ConvTiling(kernel=ks, splits=splits, tile_h=th, tile_w=tw,
                                    cin_groups=gi, in_groups=in_groups, out_blocks=out_blocks,
                                    ob_group=ob_group, weight_sets=sets, resident=resident,
                                    traffic=traffic,
                                    cycles=max(cycles, -(-traffic // rate))))
    if not cands:
        raise ValueError(f"no tile of a {kernel}x{kernel}/{stride} convolution "
                         f"over {in_groups} channel blocks x {width} columns fits the buffers "
                         f"of config {c.name!r} (line buffer {c.line_buffer_words} words, "
                         f"input buffer slot {slot} words)")
    # Groups of output blocks only when no tiling with all blocks is within 1% of them: their
    # estimate is optimistic by a few percent: a 3x3 128 -> 128 at 28x28 in 14x28 tiles and 2
    # groups (the least traffic within 1%) is estimated at 452,928 cycles and runs 456,156;
    # 7x28 tiles with all blocks run 453,724.
    fastest = min(t.cycles for t in cands)
    whole = [t for t in cands if t.ob_group == out_blocks]
    if whole and min(t.cycles for t in whole) * 100 <= fastest * 101:
        cands = whole
        fastest = min(t.cycles for t in cands)
    # The estimate is no finer than ~1%: within that, the least traffic, then the fewest
    # estimated cycles, then the fewest tiles (fewer instructions) win.
    return min((t for t in cands if t.cycles * 100 <= fastest * 101),
               key=lambda t: (t.traffic, t.cycles, -(-out_h // t.tile_h)
                              * -(-out_w // t.tile_w) * -(-in_groups // t.cin_groups)
                              * -(-out_blocks // t.ob_group)))


@dataclass(frozen=True)
class PoolTiling:
    tile_h: int
    tile_w: int
    groups: int          #: channel blocks per tile
    traffic: int
    ibuf_slots: int = 2  #: 1 when a global-average plane needs the whole input buffer


def plan_pool(config: AcceleratorConfig, *, groups: int, height: int, width: int,
              kernel: int, stride: int, out_h: int, out_w: int, global_avg: bool) -> PoolTiling:
    c, lanes = config, config.lanes
    slot = ibuf_slot_words(c, 2)
    obuf_half = obuf_usable_words(c) // 2
    best: PoolTiling | None = None
    if global_avg:
        # Whole planes only (the sum is saturated once); a plane larger than half the input
        # buffer gives up double buffering rather than fail.
        for slots in (2, 1):
            for gi in _side_candidates(groups):
                if gi * height * width <= ibuf_slot_words(c, slots) and gi <= obuf_half:
                    return PoolTiling(tile_h=1, tile_w=1, groups=gi, ibuf_slots=slots,
                                      traffic=groups * height * width * lanes)
        raise ValueError(f"a {height}x{width} plane for global average pooling "
                         f"does not fit the input buffer ({ibuf_slot_words(c, 1)} words) of "
                         f"config {c.name!r}")
    for gi in _side_candidates(groups):
        for tw in _side_candidates(out_w):
            in_w = min((tw - 1) * stride + kernel, width)
            if in_w > min(c.line_buffer_words, MAX_SIDE) or tw > MAX_SIDE:
                continue

            def fits(th: int, tw: int = tw, in_w: int = in_w, gi: int = gi) -> bool:
                in_h = min((th - 1) * stride + kernel, height)
                return (in_h <= MAX_SIDE and gi * in_h * in_w <= slot
                        and gi * th * tw <= obuf_half)

            th = _tallest(min(out_h, MAX_SIDE), fits)
            if th == 0:
                continue
            ny, nx = -(-out_h // th), -(-out_w // tw)
            in_h = min((th - 1) * stride + kernel, height)
            traffic = ny * nx * groups * in_h * (in_w * lanes + BURST)
            cand = PoolTiling(tile_h=th, tile_w=tw, groups=gi, traffic=traffic)
            tiles = ny * nx * -(-groups // gi)
            if best is None or (traffic, tiles) < (
                    best.traffic, -(-out_h // best.tile_h) * -(-out_w // best.tile_w)
                    * -(-groups // best.groups)):
                best = cand
    if best is None:
        raise ValueError(f"a {kernel}x{kernel}/{stride} pooling window over "
                         f"{width} columns does not fit the input buffer slot ({slot} words) / "
                         f"line buffer of config {c.name!r}")
    return best


@dataclass(frozen=True)
class AddTiling:
    words: int           #: buffer words (pixels x channel blocks) per element-wise step


def plan_add(config: AcceleratorConfig, *, total_words: int) -> AddTiling:
    # Four input slots (a and b, ping-pong), two output slots; count is a 16-bit field.
    step = min(ibuf_slot_words(config, 4), obuf_usable_words(config) // 2, (1 << 16) - 1)
    return AddTiling(words=min(step, total_words))
