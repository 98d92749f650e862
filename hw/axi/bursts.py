"""What the DMA read and write engines share: the descriptor, the burst generator that turns
one into AXI4 INCR bursts, and the engines' parameter checks.

A `Descriptor` is the DRAM side of a LOAD or STORE (hw/isa.py `LoadStoreLayout`) plus the size
of the buffer word it moves: word `(i2*count1 + i1)*size0 + i0` lives at DRAM byte
`dram_addr + i2*stride2 + i1*stride1 + i0*word_bytes`, for i0 < size0, i1 < count1,
i2 < count2. Each row (fixed i1, i2) is contiguous: `size0 << beats_log2` bus beats.

`BurstGenerator` cuts every row into INCR bursts that never cross a block of
`min(max_burst_beats, beats per 4 KiB)` beats aligned to its size -- so never a 4 KiB boundary
(AXI forbids it) -- and emits them in order: a row's first burst runs to the end of its block
(or the row), the next ones are whole blocks, the last one the rest.

Requirements on a descriptor (the controller's decoder checks them, as `isa.check` does):
size0, count1, count2 >= 1; dram_addr, stride1 and stride2 multiples of the word size; the
word size `bus_bytes << beats_log2` a power of two of at most 512 bytes, so every word, row
and 4 KiB page starts on a beat boundary and rows are whole words.
"""

from amaranth.hdl import Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import AcceleratorConfig

from .signatures import AXIResp

__all__ = ["MAX_BEATS_LOG2", "AXCACHE", "Descriptor", "Burst", "BurstGenerator",
           "word_beats_log2", "default_max_word_bytes", "check_engine_params", "first_error"]

#: log2 of the largest number of beats in one buffer word the descriptor can name (128).
MAX_BEATS_LOG2 = 7


class Descriptor(data.Struct):
    """One strided DMA transfer (the DRAM side of a LOAD/STORE), 151 bits."""
    dram_addr: 32
    size0: 16        #: words per contiguous row
    count1: 16       #: rows per plane
    stride1: 32      #: bytes from one row to the next
    count2: 16       #: planes
    stride2: 32      #: bytes from one plane to the next
    beats_log2: 3    #: log2(buffer word bytes / bus bytes); 0 when a word is one beat
    tag: 4           #: opaque; returned with the words (reads) or the completion (writes)


class Burst(data.Struct):
    """One AXI INCR burst of full-width beats."""
    addr: 32
    len: 8           #: beats - 1 (AXI `axlen`)
    beats_log2: 3    #: the descriptor's word size, for the data side
    last: 1          #: the final burst of its descriptor
    tag: 4           #: the descriptor's tag


def _beats_log2(config: AcceleratorConfig, word_bytes: int, name: str) -> int:
    beats = word_bytes // config.axi_data_bytes \
        if isinstance(word_bytes, int) and not isinstance(word_bytes, bool) else 0
    if beats * config.axi_data_bytes != word_bytes or beats & (beats - 1) or \
            not 1 <= beats <= 1 << MAX_BEATS_LOG2:
        raise ValueError(f"{name} must be a power-of-two multiple (1 to {1 << MAX_BEATS_LOG2}) "
                         f"of the {config.axi_data_bytes}-byte bus beat, not {word_bytes!r}")
    return beats.bit_length() - 1


def word_beats_log2(config: AcceleratorConfig, word_bytes: int) -> int:
    """The descriptor's `beats_log2` for buffer words of `word_bytes` on `config`'s bus."""
    return _beats_log2(config, word_bytes, "word_bytes")


#: AXI4 ARCACHE/AWCACHE for DMA traffic: normal non-cacheable bufferable.
AXCACHE = 0b0011


def default_max_word_bytes(config: AcceleratorConfig) -> int:
    """The widest word the engines move on `config`: a parameter word, a buffer word or a
    32-byte instruction, never less than one bus beat."""
    return max(config.word_bytes, config.pbuf_word_bytes, 32, config.axi_data_bytes)


def check_engine_params(config: AcceleratorConfig, max_word_bytes: int,
                        outstanding: int) -> int:
    """Validate the constructor parameters shared by the read and write engines; return the
    number of beats in the widest word."""
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
    beats_log2 = _beats_log2(config, max_word_bytes, "max_word_bytes")
    if isinstance(outstanding, bool) or not isinstance(outstanding, int) \
            or not 1 <= outstanding <= 256:
        raise ValueError(f"outstanding must be an integer from 1 to 256, not {outstanding!r}")
    return 1 << beats_log2


def first_error(acc: Value, resp: Value) -> Value:
    """The first non-OKAY response of a sequence: keep `acc` unless it is OKAY."""
    return Mux(acc == AXIResp.OKAY, resp, acc)


class BurstGenerator(wiring.Component):
    """Descriptor stream in, burst stream out.

    Ports: `i` (In stream of `Descriptor`), `o` (Out stream of `Burst`; the whole payload and
    `valid` are registers), `busy` (Out: a descriptor is accepted and not all its bursts have
    left `o`; a register).

    Latency: a descriptor accepted in cycle t gives its first burst on `o` in cycle t+1.
    Throughput: one burst per cycle; the next descriptor is accepted in the same cycle as the
    previous one's last burst leaves, so back-to-back descriptors lose no cycle. `i.ready` is
    two gates after `o.ready` and registers (`~active | o.ready & last`).

    Timing: the current burst's length, whether it ends its row and whether it is the
    descriptor's last are registers, computed when the burst's state is loaded (descriptor
    accepted, or the previous burst left) from registers only. Within a row the next burst is
    the next block: its row-end flag and length are bits of the registered span (beats from
    the block's start to the row's last beat), with no arithmetic in front of them; a new
    row's first burst is one add (its block offset + the row's beats - 1) and a zero test of
    the sum's high bits deep. (Splitting at the page and at max_burst_beats from the row's
    start instead put two subtracts and two compares in series: the OrangeCrab 25F's
    critical path at dbbecd2, 12.2 ns.)
    """

    def __init__(self, *, data_bits: int, max_burst_beats: int) -> None:
        if not isinstance(data_bits, int) or data_bits < 32 or data_bits & (data_bits - 1):
            raise ValueError(f"data_bits must be a power of two of at least 32, not {data_bits!r}")
        if not isinstance(max_burst_beats, int) or not 1 <= max_burst_beats <= 256 \
                or max_burst_beats & (max_burst_beats - 1):
            raise ValueError(f"max_burst_beats must be a power of two from 1 to 256, not "
                             f"{max_burst_beats!r}")
        self.data_bits = data_bits
        self.max_burst_beats = max_burst_beats
        super().__init__({"i": In(stream.Signature(Descriptor)),
                          "o": Out(stream.Signature(Burst)),
                          "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        size_log2 = (self.data_bits // 8).bit_length() - 1
        page_beats = 4096 >> size_log2
        row_bits = 16 + MAX_BEATS_LOG2
        # Bursts never cross a block of `block` beats (a power of two dividing the 4 KiB
        # page), so a row's bursts are: up to the first block boundary, whole blocks, the
        # rest. `block_log2` bits of the beat address are the offset in the block.
        block = min(self.max_burst_beats, page_beats)
        k = block.bit_length() - 1

        active = Signal()
        addr = Signal(32)
        row_next = Signal(32)          # the current row's start + stride1
        plane_next = Signal(32)        # the current plane's start + stride2
        row_beats_m1 = Signal(row_bits)
        rows_left = Signal(16)         # rows left in the plane, this one included
        planes_left = Signal(16)
        count1 = Signal(16)
        stride1 = Signal(32)
        stride2 = Signal(32)
        beats_log2 = Signal(3)
        tag = Signal(4)
        # The current burst, registered with the state above. `span`: beats from the current
        # block's start to the row's last beat (the burst ends the row when span < block).
        span = Signal(row_bits + 1)
        length = Signal(8)
        row_end = Signal()
        last = Signal()
        last_row = Signal()       # rows_left == 1 and planes_left == 1
        rows_last = Signal()           # rows_left == 1

        def offset(address: Value) -> Value:
            """Beats from the start of `address`'s block."""
            return address[size_log2:size_log2 + k]

        def row_start(address: Value, span_value: Value, ends: Value, length_end: Value,
                      final_row: Value) -> list:
            """The first burst of a row at `address` (register updates): it ends the row
            (`ends`, its length - 1 then `length_end`) or runs to the block's end."""
            return [addr.eq(address), span.eq(span_value), row_end.eq(ends),
                    length.eq(Mux(ends, length_end, (~offset(address)).as_unsigned())),
                    last.eq(ends & final_row), last_row.eq(final_row)]

        advance = Signal()
        m.d.comb += [
            self.o.valid.eq(active),
            self.o.payload.addr.eq(addr),
            self.o.payload.len.eq(length),
            self.o.payload.beats_log2.eq(beats_log2),
            self.o.payload.last.eq(last),
            self.o.payload.tag.eq(tag),
            advance.eq(active & self.o.ready),
            self.i.ready.eq(~active | (self.o.ready & last)),
            self.busy.eq(active),
        ]

        # The next row's start is a register (`row_next` or `plane_next`), chosen by a
        # register; the case below is chosen by registers and `o.ready` only.
        new_row = Signal(32)
        new_span = Signal.like(span)
        m.d.comb += [new_row.eq(Mux(rows_last, plane_next, row_next)),
                     new_span.eq(offset(new_row) + row_beats_m1)]
        new_ends = new_span[k:] == 0
        with m.If(advance):
            with m.If(~row_end):
                # The next block: its burst ends the row when span - block < block; every
                # value here is a register, a constant or one increment.
                ends = span[k + 1:] == 0
                block_bits = size_log2 + k
                m.d.sync += [
                    addr.eq(((addr >> block_bits) + 1) << block_bits),
                    span.eq(span - block), row_end.eq(ends),
                    length.eq(Mux(ends, span[:k], block - 1)), last.eq(ends & last_row)]
            with m.Elif(~rows_last):
                m.d.sync += [*row_start(new_row, new_span, new_ends, row_beats_m1,
                                        (rows_left == 2) & (planes_left == 1)),
                             rows_last.eq(rows_left == 2),
                             row_next.eq(new_row + stride1), rows_left.eq(rows_left - 1)]
            with m.Elif(~last):
                m.d.sync += [*row_start(new_row, new_span, new_ends, row_beats_m1,
                                        (count1 == 1) & (planes_left == 2)),
                             rows_last.eq(count1 == 1),
                             row_next.eq(new_row + stride1), plane_next.eq(new_row + stride2),
                             rows_left.eq(count1), planes_left.eq(planes_left - 1)]
            with m.Else():
                m.d.sync += active.eq(0)

        # The descriptor's first burst, computed whether or not it is accepted (so that
        # `i.ready` only chooses the registers' inputs, after the arithmetic).
        d = self.i.payload
        first_row_m1 = Signal(row_bits)
        reach = Signal(row_bits + 1)     # offset + size0 << beats_log2 = span + 1
        m.d.comb += [
            # size0 << b minus one, without a carry chain after the shift
            first_row_m1.eq(((d.size0 - 1) << d.beats_log2)
                            | ((Const(1, 1 << 3) << d.beats_log2) - 1)),
            reach.eq(offset(d.dram_addr) + (d.size0 << d.beats_log2)),
        ]
        # span < block, i.e. reach <= block, from the sum's bits (no compare after the add;
        # `size0 - 1` only reaches the length, beside it)
        first_ends = (reach[k + 1:] == 0) & (~reach[k] | (reach[:k] == 0))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [active.eq(1), *row_start(
                d.dram_addr, reach - 1, first_ends, first_row_m1,
                (d.count1 == 1) & (d.count2 == 1)),
                rows_last.eq(d.count1 == 1), row_next.eq(d.dram_addr + d.stride1),
                plane_next.eq(d.dram_addr + d.stride2),
                row_beats_m1.eq(first_row_m1), rows_left.eq(d.count1), planes_left.eq(d.count2),
                count1.eq(d.count1), stride1.eq(d.stride1), stride2.eq(d.stride2),
                beats_log2.eq(d.beats_log2), tag.eq(d.tag)]
        return m
