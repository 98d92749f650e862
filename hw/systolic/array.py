"""The R x C grid of processing elements with its input skew and output deskew registers."""

from __future__ import annotations

from amaranth import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .delay import delay_line, delayed, downstream_first
from .pe import ProcessingElement, context_bits, psum_bits

__all__ = ["SystolicArray"]


def _positive(name: str, value: int, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise ValueError(f"{name} must be an integer from 1 to {top}, not {value!r}")
    return value


class SystolicArray(wiring.Component):
    """Weight-stationary `rows` x `columns` array: activations move right, partial sums down.

    Lane r of a chunk enters row r; column c sums `lane r * w[context, bank, r, c]` over the
    rows. Row r's lane is skewed by r registers and column c's sum deskewed by
    `columns - 1 - c` registers, so a whole chunk goes in and one row of C sums comes out.

    Parameters (keyword-only): rows, columns (1..64), contexts (1..127).

    Ports
    -----
    en : In(1)
        Pipeline advance (global clock enable): all skew, PE and deskew registers hold while
        it is low.
    data : In(ArrayLayout(signed(8), rows))
        The chunk's lanes; `context` (index of its weight context) and `bank` travel with it.
    w_en, w_column, w_addr, w_data : In
        Weight write bus, independent of `en`: at the edge of a cycle with `w_en` high, PE
        (r, w_column) stores lane r of `w_data` at address `w_addr` = Cat(context, bank).
        A read and a write of the same weight in one cycle read the old weight.
    psums : Out(ArrayLayout(signed(psum_bits(rows)), columns))
        Column sums `sum_r data[r] * w[r, c]` of the chunk that was on the inputs `latency`
        advances earlier (exact: psum_bits(rows) = 16 + log2(rows) bits).

    Latency and throughput
    ----------------------
    One chunk per advance; `latency` = rows + columns + 2 advances from the inputs to
    `psums`. For column c: 1 input register, c to cross the row, 3 multiply-add stages in
    row 0 (pe.py), rows - 1 down the column (row r's lane waits in r skew registers for its
    partial sum), columns - 1 - c deskew. Counting the advance that takes the chunk into the
    input register as advance 1, PE (r, c) reads the chunk's weight at the edge of advance
    r + c + 2 (`last_read` = rows + columns for the last PE).
    """

    def __init__(self, *, rows: int, columns: int, contexts: int) -> None:
        self.rows = _positive("rows", rows, 64)
        self.columns = _positive("columns", columns, 64)
        self.contexts = _positive("contexts", contexts, 127)
        ctx = context_bits(contexts)
        lanes = data.ArrayLayout(signed(8), rows)
        super().__init__({
            "en": In(1),
            "data": In(lanes),
            "context": In(unsigned(ctx)),
            "bank": In(1),
            "w_en": In(1),
            "w_column": In(range(columns)),
            "w_addr": In(unsigned(ctx + 1)),
            "w_data": In(lanes),
            "psums": Out(data.ArrayLayout(signed(psum_bits(rows)), columns)),
        })

    @property
    def latency(self) -> int:
        """Advances from a chunk on the inputs to its sums on `psums`."""
        return self.rows + self.columns + 2

    @property
    def last_read(self) -> int:
        """Advance (counting the one that takes the chunk in as 1) at whose edge the last PE
        reads the chunk's weight; after it the chunk no longer needs its bank."""
        return self.rows + self.columns

    def elaborate(self, platform) -> Module:
        m = Module()
        grid = [[ProcessingElement(contexts=self.contexts,
                                   psum_in_bits=psum_bits(max(r, 1)),
                                   psum_out_bits=psum_bits(r + 1))
                 for c in range(self.columns)] for r in range(self.rows)]
        # One (context, bank) delay line for the whole array: PE (r, c) reads its weight at
        # the address of the chunk whose lane r reaches it, r + 1 skew registers and c PEs
        # after the input, so every PE of anti-diagonal r + c shares tap r + c + 1. This
        # replaces a copy in every PE (R x C registers of address bits) by R + C of them.
        taps = delay_line(m, self.en, Cat(self.context, self.bank),
                          self.rows + self.columns - 1, name="address")
        column_write = []
        for c in range(self.columns):
            write = Signal(name=f"w_en_column{c}")
            m.d.comb += write.eq(self.w_en & (self.w_column == c))
            column_write.append(write)
        ctx = context_bits(self.contexts)
        for r, row in enumerate(grid):
            lane = delayed(m, self.en, self.data[r], r + 1, name=f"skew{r}_data")
            for c, pe in enumerate(row):
                # Named so that the name order (Yosys's and so Verilator's update order)
                # is downstream first along both chains (delay.py): pe_<rank>_<r>_<c>.
                rank = downstream_first(r * self.columns + c, self.rows * self.columns)
                m.submodules[f"pe_{rank}_{r}_{c}"] = pe
                m.d.comb += [
                    pe.en.eq(self.en),
                    pe.a_in.eq(lane),
                    pe.context_in.eq(taps[r + c + 1][:ctx]),
                    pe.bank_in.eq(taps[r + c + 1][ctx]),
                    pe.psum_in.eq(grid[r - 1][c].psum_out if r else 0),
                    pe.w_en.eq(column_write[c]),
                    pe.w_addr.eq(self.w_addr),
                    pe.w_data.eq(self.w_data[r]),
                ]
                lane = pe.a_out
        sums = [delayed(m, self.en, grid[-1][c].psum_out, self.columns - 1 - c,
                        name=f"deskew{c}") for c in range(self.columns)]
        m.d.comb += self.psums.eq(Cat(*sums))
        return m

