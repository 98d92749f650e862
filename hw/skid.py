"""A skid buffer: a stream stage whose `i.ready` is a flip-flop.

It cuts the combinational path from a consumer's `ready` back into a producer's pipeline
enable (the window generator's, which fans out to its line buffer and every stage register)
without costing a cycle: while the buffer is empty, `i` passes straight through to `o`.
"""

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Ports:
      i (In stream `shape`): `ready` is 1 exactly when the buffer is empty (a flip-flop).
      o (Out stream `shape`): the buffered payload if there is one, else `i` unchanged.

    An item offered on `i` while `o` is not ready is taken into the buffer; the buffer then
    empties through `o` before `i` is taken again.

    Latency: 0 cycles (combinational pass-through while empty). Throughput: one item per
    cycle while `o` is ready; after a stall, the buffered item goes first and `i` waits
    for that one cycle, so a producer that never stalls on its own delivers on `o` in the
    same cycles as it would without the buffer.
    """

    def __init__(self, shape) -> None:
        self._shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        full = Signal()
        held = Signal(Shape.cast(self._shape).width)
        m.d.comb += [
            self.i.ready.eq(~full),
            self.o.valid.eq(full | self.i.valid),
            self.o.payload.eq(Mux(full, held, self.i.payload)),
        ]
        with m.If(full):
            with m.If(self.o.ready):
                m.d.sync += full.eq(0)
        with m.Elif(self.i.valid & ~self.o.ready):
            m.d.sync += [full.eq(1), held.eq(self.i.payload)]
        return m
