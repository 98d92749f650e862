"""What the DMA read and write engines share: the descriptor, the burst generator that turns
one into AXI4 INCR bursts, and the engines' parameter checks.

A `Descriptor` is the DRAM side of a LOAD or STORE (hw/isa.py `LoadStoreLayout`) plus the size
of the buffer word it moves: word `(i2*count1 + i1)*size0 + i0` lives at DRAM byte
`dram_addr + i2*stride2 + i1*stride1 + i0*word_bytes`, for i0 < size0, i1 < count1,
i2 < count2. Each row (fixed i1, i2) is contiguous: `size0 << beats_log2` bus beats.

`BurstGenerator` cuts every row into INCR bursts of at most `max_burst_beats` beats that never
cross a 4 KiB boundary (AXI forbids it) and emits them in order.

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
    accepted, or the previous burst left) from registers only. The distance to the next
    4 KiB page and the next row's and plane's start addresses are registers too, so loading
    a burst is one add or subtract, a compare and a mux deep.
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
        max_beats = self.max_burst_beats

        # Counts are kept alongside their value minus one, so that no path adds or subtracts
        # twice in a row: the burst length (AXI len = beats - 1) and the distance to the next
        # page (page_beats - 1 - page offset = the offset's complement) need no carry chain.
        def plan(rem, rem_m1, page, page_m1, final_row, *, compare_rem=False) -> list:
            """The burst starting `page` beats before a page boundary with `rem` beats left
            in its row (`final_row`: the descriptor's last row), as register updates.
            `compare_rem`: decide the row end from `rem` rather than `rem_m1` (the same
            answer, as rem >= 1), when `rem_m1` is the later of the two to settle."""
            big = page_m1 >= max_beats - 1
            cap, cap_m1 = Mux(big, max_beats, page), Mux(big, max_beats - 1, page_m1)
            ends = rem <= cap if compare_rem else rem_m1 <= cap_m1
            return [row_rem.eq(rem), row_rem_m1.eq(rem_m1), to_page.eq(page),
                    to_page_m1.eq(page_m1), beats.eq(Mux(ends, rem, cap)),
                    length.eq(Mux(ends, rem_m1, cap_m1)), row_end.eq(ends),
                    last.eq(ends & final_row), last_row.eq(final_row)]

        active = Signal()
        addr = Signal(32)
        row_next = Signal(32)          # the current row's start + stride1
        plane_next = Signal(32)        # the current plane's start + stride2
        row_rem = Signal(row_bits)     # beats left in the current row
        row_rem_m1 = Signal(row_bits)
        row_beats = Signal(row_bits)
        row_beats_m1 = Signal(row_bits)
        rows_left = Signal(16)         # rows left in the plane, this one included
        planes_left = Signal(16)
        count1 = Signal(16)
        stride1 = Signal(32)
        stride2 = Signal(32)
        beats_log2 = Signal(3)
        tag = Signal(4)
        # The current burst, registered with the state above.
        to_page = Signal(range(page_beats + 1))   # beats from addr to the next page
        to_page_m1 = Signal(range(page_beats))
        beats = Signal(range(max_beats + 1))
        length = Signal(8)
        row_end = Signal()
        last = Signal()
        last_row = Signal()       # rows_left == 1 and planes_left == 1
        rows_last = Signal()           # rows_left == 1

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

        def page_offset_m1(address: Value) -> Value:
            """page_beats - 1 - (beats from the page start to `address`)."""
            return (~address[size_log2:12]).as_unsigned()

        # The next row's start is a register (`row_next` or `plane_next`), chosen by a
        # register; the case below is chosen by registers and `o.ready` only.
        new_row = Signal(32)
        new_to_page_m1 = Signal.like(to_page_m1)
        m.d.comb += [new_row.eq(Mux(rows_last, plane_next, row_next)),
                     new_to_page_m1.eq(page_offset_m1(new_row))]
        with m.If(advance):
            with m.If(~row_end):
                page_end = to_page == beats
                m.d.sync += [addr.eq(addr + (beats << size_log2)), *plan(
                    row_rem - beats, row_rem_m1 - beats,
                    Mux(page_end, page_beats, to_page - beats),
                    Mux(page_end, page_beats - 1, to_page_m1 - beats), last_row)]
            with m.Elif(~rows_last):
                m.d.sync += [addr.eq(new_row), *plan(
                    row_beats, row_beats_m1, new_to_page_m1 + 1, new_to_page_m1,
                    (rows_left == 2) & (planes_left == 1)),
                    rows_last.eq(rows_left == 2),
                    row_next.eq(new_row + stride1), rows_left.eq(rows_left - 1)]
            with m.Elif(~last):
                m.d.sync += [addr.eq(new_row), *plan(
                    row_beats, row_beats_m1, new_to_page_m1 + 1, new_to_page_m1,
                    (count1 == 1) & (planes_left == 2)),
                    rows_last.eq(count1 == 1),
                    row_next.eq(new_row + stride1), plane_next.eq(new_row + stride2),
                    rows_left.eq(count1), planes_left.eq(planes_left - 1)]
            with m.Else():
                m.d.sync += active.eq(0)

        # The descriptor's first burst, computed whether or not it is accepted (so that
        # `i.ready` only chooses the registers' inputs, after the arithmetic).
        d = self.i.payload
        first_row = Signal(row_bits)
        first_row_m1 = Signal(row_bits)
        first_to_page_m1 = Signal.like(to_page_m1)
        m.d.comb += [
            first_row.eq(d.size0 << d.beats_log2),
            # size0 << b minus one, without a carry chain after the shift
            first_row_m1.eq(((d.size0 - 1) << d.beats_log2)
                            | ((Const(1, 1 << 3) << d.beats_log2) - 1)),
            first_to_page_m1.eq(page_offset_m1(d.dram_addr)),
        ]
        with m.If(self.i.valid & self.i.ready):
            # The row-end compare reads `size0 << beats_log2`; `size0 - 1` (a carry chain)
            # only reaches the burst length, beside the compare rather than before it.
            m.d.sync += [active.eq(1), addr.eq(d.dram_addr), *plan(
                first_row, first_row_m1, first_to_page_m1 + 1, first_to_page_m1,
                (d.count1 == 1) & (d.count2 == 1), compare_rem=True),
                rows_last.eq(d.count1 == 1), row_next.eq(d.dram_addr + d.stride1),
                plane_next.eq(d.dram_addr + d.stride2), row_beats.eq(first_row),
                row_beats_m1.eq(first_row_m1), rows_left.eq(d.count1), planes_left.eq(d.count2),
                count1.eq(d.count1), stride1.eq(d.stride1), stride2.eq(d.stride2),
                beats_log2.eq(d.beats_log2), tag.eq(d.tag)]
        return m
