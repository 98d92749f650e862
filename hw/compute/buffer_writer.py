"""Buffer writer: writes a stream of words to consecutive addresses of a memory write port.

Ports:
  cmd   In(stream of {base, count})       one region per command
  i     In(stream of words)               `count` words per command
  wr    drives a `memory.WritePort`
  done  Out(1)                            one-cycle strobe when a command's last word is written

Latency: the word accepted in cycle t is in the memory after edge t (write port), `done` is
high in the cycle after. Throughput: 1 word per cycle; commands follow each other without gap.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BufferWriter"]


class BufferWriter(wiring.Component):
    def __init__(self, *, addr_width: int, shape, count_width: int = 17) -> None:
        if isinstance(addr_width, bool) or not isinstance(addr_width, int) or addr_width < 1:
            raise ValueError(f"addr_width must be a positive integer, not {addr_width!r}")
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({"base": 16, "count": count_width}))),
            "i": In(stream.Signature(shape)),
            "wr": In(memory.WritePort.Signature(addr_width=addr_width, shape=shape)),
            "done": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        active = Signal()
        addr = Signal(16)
        remaining = Signal.like(self.cmd.payload.count)
        # remaining == 1, registered with it: the compare sat between the input stream's
        # valid and `cmd.ready` (a path through the compute unit's mode mux).
        on_last = Signal()
        write = active & self.i.valid
        finishing = write & on_last
        m.d.comb += [
            self.cmd.ready.eq(~active | finishing),
            self.i.ready.eq(active),
            self.wr.en.eq(write),
            self.wr.addr.eq(addr),
            self.wr.data.eq(self.i.payload),
        ]
        m.d.sync += self.done.eq(finishing)
        with m.If(write):
            m.d.sync += [addr.eq(addr + 1), remaining.eq(remaining - 1),
                         on_last.eq(remaining == 2)]
            with m.If(finishing):
                m.d.sync += active.eq(0)
        # A command with no words is taken and leaves the writer idle; the count's compares
        # feed register inputs only, not the load enable (the command payload's mux -> the
        # compare -> the enable of ~40 registers was among the ULX3S estimate's longest).
        with m.If(self.cmd.ready & self.cmd.valid):
            m.d.sync += [active.eq(self.cmd.payload.count != 0), addr.eq(self.cmd.payload.base),
                         remaining.eq(self.cmd.payload.count),
                         on_last.eq(self.cmd.payload.count == 1)]
        return m
