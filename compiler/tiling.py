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
  input-channel tiles or kernel pieces (the accumulation of those passes must survive).

Convolution: an output tile is `tile_h x tile_w` pixels of every output block; its input tile
is the rows and columns those pixels read (a halo of kernel - stride rows/columns overlaps
the neighbouring tiles), clipped to the image: the CONV pad fields are non-zero only where the
tile touches the top/left image edge, and the bottom/right padding is implied by out_h/out_w.
Kernels larger than `max_kernel` are cut into `splits x splits` square pieces of side
ceil(K / splits) (zero-filled past K), each a CONV over a shifted input tile, all accumulated.
The search tries every input-channel tile (`cin_groups` blocks of `lanes` channels) and
output tile width, takes the tallest tile that fits, and keeps the choice with the least
estimated DRAM traffic (input with halos + weights times the number of spatial tiles unless
resident + `BURST` per DMA row, so that wide rows win ties), then the fewest tiles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hw.config import AcceleratorConfig

__all__ = ["MAX_SIDE", "BURST", "RESERVED_WORDS", "Window", "input_window", "ConvTiling",
           "PoolTiling", "AddTiling", "ibuf_slot_words", "obuf_usable_words", "obuf_slots",
           "plan_conv", "plan_pool", "plan_add", "ranges"]

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
    weight_sets: int     #: distinct contexts x columns weight sets of the layer
    resident: bool       #: all weight sets stay in the weight buffer
    traffic: int         #: estimated DRAM bytes

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
    best: ConvTiling | None = None
    for gi in _side_candidates(in_groups):
        ncin = -(-in_groups // gi)
        sets = splits * splits * out_blocks * sum(
            -(-ks * ks * g // c.contexts) for _, g in ranges(in_groups, gi))
        separate = splits * splits * ncin > 1
        for tw in _side_candidates(out_w):
            if tw > MAX_SIDE:
                continue
            in_w = min((tw - 1) * stride + ks, width)
            if in_w * gi > c.line_buffer_words or in_w > MAX_SIDE:
                continue

            def fits(th: int, tw: int = tw, in_w: int = in_w, gi: int = gi,
                     separate: bool = separate) -> bool:
                in_h = min((th - 1) * stride + ks, height)
                pixels = th * tw
                return (in_h <= MAX_SIDE and gi * in_h * in_w <= slot and pixels <= obuf_half
                        and pixels * (out_blocks if separate else 1) <= c.acc_words)

            th = _tallest(min(out_h, MAX_SIDE), fits)
            if th == 0:
                continue
            ny, nx = -(-out_h // th), -(-out_w // tw)
            in_h = min((th - 1) * stride + ks, height)
            resident = sets <= wslots
            traffic = (ny * nx * splits * splits * in_groups * in_h * (in_w * lanes + BURST)
                       + weight_bytes_total * (1 if resident else ny * nx))
            cand = ConvTiling(kernel=ks, splits=splits, tile_h=th, tile_w=tw, cin_groups=gi,
                              in_groups=in_groups, out_blocks=out_blocks, weight_sets=sets,
                              resident=resident, traffic=traffic)
            key = (traffic, ny * nx * ncin)
            if best is None or key < (best.traffic, -(-out_h // best.tile_h)
                                      * -(-out_w // best.tile_w)
                                      * -(-in_groups // best.cin_groups)):
                best = cand
    if best is None:
        raise ValueError(f"no tile of a {kernel}x{kernel}/{stride} convolution "
                         f"over {in_groups} channel blocks x {width} columns fits the buffers "
                         f"of config {c.name!r} (line buffer {c.line_buffer_words} words, "
                         f"input buffer slot {slot} words)")
    return best


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
