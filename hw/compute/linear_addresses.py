"""Linear address generator: `count` consecutive addresses from `base`, one per clock.

Used for weight loads (weight buffer), stores (output buffer) and element-wise operands.

Ports:
  cmd  In(stream of {base, count, tag})
  o    Out(stream of {addr, last, tag})   `last` on the final address of a command

Latency: 1 cycle from command to first address. Throughput: 1 address per cycle; a new
command is accepted in the cycle its predecessor's last address leaves, so consecutive
commands stream without a gap.
"""

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LinearAddressGenerator"]


class LinearAddressGenerator(wiring.Component):
    def __init__(self, *, addr_width: int = 16, count_width: int = 17, tag_shape=0) -> None:
        for name, value in (("addr_width", addr_width), ("count_width", count_width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        # A zero-width tag is left out (it would be an empty Verilog vector).
        self.tagged = Shape.cast(tag_shape).width > 0
        tag = {"tag": tag_shape} if self.tagged else {}
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout(
                {"base": addr_width, "count": count_width, **tag}))),
            "o": Out(stream.Signature(data.StructLayout(
                {"addr": addr_width, "last": 1, **tag}))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        remaining = Signal.like(self.cmd.payload.count)
        last = remaining == 1
        done = ~self.o.valid | (self.o.ready & last)
        m.d.comb += [self.cmd.ready.eq(done), self.o.payload.last.eq(last)]
        with m.If(self.o.valid & self.o.ready & ~last):
            m.d.sync += [self.o.payload.addr.eq(self.o.payload.addr + 1),
                         remaining.eq(remaining - 1)]
        with m.If(done):
            m.d.sync += [self.o.valid.eq(self.cmd.valid & (self.cmd.payload.count != 0)),
                         self.o.payload.addr.eq(self.cmd.payload.base),
                         remaining.eq(self.cmd.payload.count)]
            if self.tagged:
                m.d.sync += self.o.payload.tag.eq(self.cmd.payload.tag)
        return m
