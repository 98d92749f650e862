"""Per-column adder: sums the chunks of one output pixel into `acc_bits`-wide partial sums."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ColumnAdder"]


class ColumnAdder(wiring.Component):
    """Adds the array's column sums of consecutive chunks until the chunk marked `last`.

    Parameters (keyword-only): columns (1..64), psum_bits (width of one array column sum,
    16..32), acc_bits (20..32, the accumulator width; sums wrap in two's complement).

    Ports
    -----
    en : In(1)
        Pipeline advance: the inputs are taken only in a cycle with `en` high.
    valid, last, psums : In
        One chunk's column sums; `valid` low is a bubble (ignored), `last` ends the pixel.
    sums : Out(ArrayLayout(signed(acc_bits), columns))
        The pixel's wrapped totals `sum over its chunks of psums`, combinational: valid in
        the cycle its last chunk is on the inputs, flagged by `done`.
    done : Out(1)
        `en & valid & last`: `sums` holds a finished pixel that this advance consumes.

    Latency and throughput
    ----------------------
    0 cycles (the running totals are the only registers; the caller registers `sums`).
    One chunk per advance; a pixel may have any number of chunks, one included.
    """

    def __init__(self, *, columns: int, psum_bits: int, acc_bits: int) -> None:
        for name, value, low, high in (("columns", columns, 1, 64),
                                       ("psum_bits", psum_bits, 16, 32),
                                       ("acc_bits", acc_bits, 20, 32)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer from {low} to {high}, "
                                 f"not {value!r}")
        self.columns = columns
        self.acc_bits = acc_bits
        super().__init__({
            "en": In(1),
            "valid": In(1),
            "last": In(1),
            "psums": In(data.ArrayLayout(signed(psum_bits), columns)),
            "sums": Out(data.ArrayLayout(signed(self.acc_bits), columns)),
            "done": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        # High after reset and after every `last`: the next valid chunk starts a new pixel.
        first = Signal(init=1)
        totals = []
        for c in range(self.columns):
            running = Signal(signed(self.acc_bits), name=f"running{c}", reset_less=True)
            total = Signal(signed(self.acc_bits), name=f"total{c}")
            m.d.comb += total.eq((Mux(first, 0, running) + self.psums[c])[:self.acc_bits])
            with m.If(self.en & self.valid):
                m.d.sync += running.eq(total)
            totals.append(total)
        with m.If(self.en & self.valid):
            m.d.sync += first.eq(self.last)
        m.d.comb += [
            self.sums.eq(Cat(*totals)),
            self.done.eq(self.en & self.valid & self.last),
        ]
        return m
