"""The line buffer: a ring of input-tile rows, one `amaranth.lib.memory.Memory`."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import AcceleratorConfig

__all__ = ["LineBuffer", "default_row_slots"]


def default_row_slots(config: AcceleratorConfig) -> int:
    """max_kernel + max_stride rows: the K rows of the output row being emitted plus the S rows
    of the next output row, so input streams in while a whole output row is emitted."""
    return config.max_kernel + config.max_stride


def _address(slot: Value, col: Value, words: int) -> Value:
    """slot * words + col. With a power-of-two `words` (every preset) that is Cat(col, slot):
    no adder in front of the memory; otherwise shifted copies of slot for the set bits of
    the constant, never a hardware multiplier."""
    if words & (words - 1) == 0:
        return Cat(col, slot)
    terms = [slot << bit for bit in range(words.bit_length()) if words >> bit & 1]
    return sum(terms[1:], terms[0]) + col


class LineBuffer(wiring.Component):
    """`row_slots` rows of `config.line_buffer_words` words, each word `config.rows` int8 lanes.

    Word (slot, col) lives at address `slot * line_buffer_words + col`; the window generator
    keeps input row r in slot r mod row_slots.

    Ports:
      w_en, w_slot, w_col, w_data (in): write `w_data` to (w_slot, w_col) at the clock edge.
      r_en, r_slot, r_col (in), r_data (out): a two-stage read pipeline advanced by `r_en`:
        the address presented at an edge with `r_en` high shows on `r_data` after the next
        edge with `r_en` high; with `r_en` low both stages hold.
    Columns must be below line_buffer_words (any column is when that is a power of two).

    Latency: read `READ_LATENCY` = 2 cycles (memory read register, then an output register:
    on an ECP5 the DP16KD's data output is 5.8 ns clock-to-out without its output register,
    so reading it straight into the pooling adders limited the ULX3S build to 42 MHz; the
    output register gives the consumer a full cycle). Throughput: one write and one read
    per cycle. A read of the word written in the same cycle is undefined in hardware (the
    memory is marked `no_rw_check`; simulation returns the old value): the generator never
    reads a row that is being written.
    """

    READ_LATENCY = 2

    def __init__(self, *, config: AcceleratorConfig, row_slots: int) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if isinstance(row_slots, bool) or not isinstance(row_slots, int) or row_slots < 1:
            raise ValueError(f"row_slots must be a positive integer, not {row_slots!r}")
        self._config = config
        self._row_slots = row_slots
        words = config.line_buffer_words
        width = 8 * config.rows
        super().__init__({
            "w_en": In(1), "w_slot": In(range(row_slots)), "w_col": In(range(words)),
            "w_data": In(unsigned(width)),
            "r_en": In(1), "r_slot": In(range(row_slots)), "r_col": In(range(words)),
            "r_data": Out(unsigned(width)),
        })

    @property
    def row_slots(self) -> int:
        return self._row_slots

    def elaborate(self, platform) -> Module:
        m = Module()
        words = self._config.line_buffer_words
        # no_rw_check: Yosys otherwise emulates read-old-data for a read of the word being
        # written (the DP16KD leaves it undefined) with a write-address compare and a mux
        # after the block RAM's 5.8 ns output, 9.2 ns to r_data on the ULX3S (108 MHz).
        m.submodules.memory = memory = Memory(
            shape=unsigned(8 * self._config.rows), depth=self._row_slots * words, init=[],
            attrs={"no_rw_check": 1})
        write = memory.write_port()
        read = memory.read_port()
        m.d.comb += [
            write.en.eq(self.w_en),
            write.addr.eq(_address(self.w_slot, self.w_col, words)),
            write.data.eq(self.w_data),
            read.en.eq(self.r_en),
            read.addr.eq(_address(self.r_slot, self.r_col, words)),
        ]
        with m.If(self.r_en):
            m.d.sync += self.r_data.eq(read.data)
        return m
