"""A streaming reader in front of one synchronous memory read port.

`BufferReader` turns a stream of addresses (each with a tag that travels along) into a stream
of the words at those addresses, at one word per clock, with full backpressure: when the output
stalls, the read port's enable drops so its data register holds the pending word.

Ports:
  a   In(stream of {addr, tag})     addresses to read
  rd  drives a `memory.ReadPort` (connect it to `Memory.read_port()`)
  o   Out(stream of {data, tag})    the words, in address order

Latency: 1 cycle (address accepted at edge t, word valid after edge t+1).
Throughput: 1 word per cycle while `o.ready` is high.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BufferReader"]


class BufferReader(wiring.Component):
    def __init__(self, *, addr_width: int, shape, tag_shape=0) -> None:
        if not isinstance(addr_width, int) or addr_width < 1:
            raise ValueError(f"addr_width must be a positive integer, not {addr_width!r}")
        self.addr_width = addr_width
        self.shape = shape
        self.tag_shape = tag_shape
        # A zero-width tag is left out (it would be an empty Verilog vector).
        tag = {"tag": tag_shape} if Shape.cast(tag_shape).width else {}
        super().__init__({
            "a": In(stream.Signature(data.StructLayout({"addr": addr_width, **tag}))),
            "rd": In(memory.ReadPort.Signature(addr_width=addr_width, shape=shape)),
            "o": Out(stream.Signature(data.StructLayout({"data": shape, **tag}))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        pending = self.o.valid  # a word is in the port's output register
        advance = ~pending | self.o.ready
        m.d.comb += [
            self.rd.en.eq(advance),
            self.rd.addr.eq(self.a.payload.addr),
            self.a.ready.eq(advance),
            self.o.payload.data.eq(self.rd.data),
        ]
        if Shape.cast(self.tag_shape).width:
            with m.If(advance):
                m.d.sync += self.o.payload.tag.eq(self.a.payload.tag)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.a.valid)
        return m
