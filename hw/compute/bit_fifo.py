"""A short first-in first-out queue of bits whose outputs are registers.

The compute unit keeps the weight bank of each CONV pass in the window generator in one of
these (its head decides whether the window generator's chunk may enter the array, `o.ready`
of the generator) and the completion kind of each issued instruction in another (its `w_rdy`
gates the acceptance of the next instruction, its head the done strobe). So `r_data`,
`r_rdy` and `w_rdy` come straight from flip-flops here, where `amaranth.lib.fifo.SyncFIFO`
reads them through its pointer, a LUT-RAM and level compares.

Ports (the names and cycle behaviour of `SyncFIFO(width=1, depth=depth)`, first-word
fall-through):
  w_en, w_data  In   a bit is written at the edge of a cycle with `w_en` and `w_rdy`
  w_rdy         Out  register: fewer than `depth` bits held (a write while full is dropped)
  r_en          In   the head is removed at the edge of a cycle with `r_en` and `r_rdy`
  r_data        Out  register: the oldest bit
  r_rdy         Out  register: a bit is held

Latency: a bit written at an edge is readable (`r_rdy`, `r_data`) from the next cycle.
Throughput: one write and one read per cycle.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BitFIFO"]


class BitFIFO(wiring.Component):
    w_en: In(1)
    w_data: In(1)
    w_rdy: Out(1, init=1)
    r_en: In(1)
    r_data: Out(1)
    r_rdy: Out(1)

    def __init__(self, *, depth: int) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 64:
            raise ValueError(f"depth must be an integer from 1 to 64, not {depth!r}")
        self.depth = depth
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        depth = self.depth
        bits = Signal(depth)            # bits[0] is the head
        count = Signal(range(depth + 1))
        read = Signal()
        write = Signal()
        slot = Signal(range(depth + 1))
        m.d.comb += [
            read.eq(self.r_en & self.r_rdy),
            write.eq(self.w_en & self.w_rdy),
            slot.eq(count - read),
            self.r_data.eq(bits[0]),
        ]
        for i in range(depth):
            with m.If(write & (slot == i)):
                m.d.sync += bits[i].eq(self.w_data)
            with m.Elif(read):
                m.d.sync += bits[i].eq(bits[i + 1] if i + 1 < depth else 0)
        m.d.sync += [
            count.eq(count + write - read),
            self.r_rdy.eq(Mux(write, 1, Mux(read, count != 1, self.r_rdy))),
            self.w_rdy.eq(Mux(read, 1, Mux(write, count != depth - 1, self.w_rdy))),
        ]
        return m
