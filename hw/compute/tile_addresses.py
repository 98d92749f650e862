"""Raster address generator for an input tile in the input buffer.

A tile of `in_h` x `in_w` pixels and `groups` channel blocks lies in the input buffer as
planes: word `base + (group * in_h + y) * in_w + x` (see docs/isa.md). The window generator
wants the words in raster order with the group innermost: (y, x, group). This block walks that
order and emits one address per clock, each with `last` on the final word of the tile.

Ports:
  cmd  In(stream of TileCommand)   one tile per command
  o    Out(stream of {addr, last}) in_h * in_w * groups addresses

Latency: 2 cycles from command to first address (one to latch and form in_h*in_w).
Throughput: 1 address per cycle; back-to-back commands lose those 2 cycles between tiles.
"""


from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TileCommand", "TileAddressGenerator"]


class TileCommand(data.Struct):
    base: 16
    in_h: 10
    in_w: 10
    groups: 10


class TileAddressGenerator(wiring.Component):
    cmd: In(stream.Signature(TileCommand))
    o: Out(stream.Signature(data.StructLayout({"addr": 16, "last": 1})))

    def elaborate(self, platform) -> Module:
        m = Module()
        tile = Signal(TileCommand)
        plane = Signal(20)      # in_h * in_w words per channel block
        y, x, g = Signal(10), Signal(10), Signal(10)
        pixel = Signal(16)      # base + y * in_w + x
        addr = Signal(16)       # pixel + g * plane
        last_y, last_x, last_g = (y == tile.in_h - 1), (x == tile.in_w - 1), (g == tile.groups - 1)

        m.d.comb += [self.o.payload.addr.eq(addr),
                     self.o.payload.last.eq(last_y & last_x & last_g)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [tile.eq(self.cmd.payload), y.eq(0), x.eq(0), g.eq(0),
                                 pixel.eq(self.cmd.payload.base), addr.eq(self.cmd.payload.base)]
                    m.next = "SIZE"
            with m.State("SIZE"):
                m.d.sync += plane.eq(tile.in_h * tile.in_w)
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    with m.If(~last_g):
                        m.d.sync += [g.eq(g + 1), addr.eq(addr + plane)]
                    with m.Else():
                        m.d.sync += [g.eq(0), pixel.eq(pixel + 1), addr.eq(pixel + 1)]
                        with m.If(~last_x):
                            m.d.sync += x.eq(x + 1)
                        with m.Else():
                            m.d.sync += [x.eq(0), y.eq(y + 1)]
                            with m.If(last_y):
                                m.next = "IDLE"
        return m
