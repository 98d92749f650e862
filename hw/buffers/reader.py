"""Streaming readers in front of one synchronous memory read port.

`BufferReader` turns a stream of addresses (each with a tag that travels along) into a stream
of the words at those addresses, at one word per clock, with full backpressure: when the output
stalls, the read port's enable drops so its data register holds the pending word.
`RegisteredBufferReader` adds an output register after the read port's data register, so the
block RAM's data output drives only a register.

Ports (both):
  a   In(stream of {addr, tag})     addresses to read
  rd  drives a `memory.ReadPort` (connect it to `Memory.read_port()`)
  o   Out(stream of {data, tag})    the words, in address order

Latency: `LATENCY` cycles (1, or 2 for `RegisteredBufferReader`): an address accepted at edge t
has its word valid after edge t + LATENCY.
Throughput: 1 word per cycle while `o.ready` is high.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BufferReader", "RegisteredBufferReader"]


class BufferReader(wiring.Component):
    """The word of an address accepted at edge t is on `o` after edge t + 1 (`LATENCY`): the
    read port's data register is the output register."""

    LATENCY = 1

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

    @property
    def _has_tag(self) -> bool:
        return bool(Shape.cast(self.tag_shape).width)

    def _read_port(self, m: Module):
        """Drive the read port and `a.ready`; returns `advance` (output empty or taken: every
        stage moves, else the port's data register holds)."""
        advance = ~self.o.valid | self.o.ready
        m.d.comb += [
            self.rd.en.eq(advance),
            self.rd.addr.eq(self.a.payload.addr),
            self.a.ready.eq(advance),
        ]
        return advance

    def elaborate(self, platform) -> Module:
        m = Module()
        advance = self._read_port(m)
        m.d.comb += self.o.payload.data.eq(self.rd.data)
        if self._has_tag:
            with m.If(advance):
                m.d.sync += self.o.payload.tag.eq(self.a.payload.tag)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.a.valid)
        return m


class RegisteredBufferReader(BufferReader):
    """The word of an address accepted at edge t is on `o` after edge t + 2 (`LATENCY`): the
    read port's data register, then an output register.

    Why: on an ECP5 the DP16KD's data output is 5.8 ns clock-to-out without its output
    register (Yosys 0.70 always maps block RAM with REGMODE "NOREG"), and the input buffer's
    data went straight into the line-buffer write mux and the element-wise multipliers: the
    ULX3S board's critical path at 44.4 MHz (22.5 ns, issue 8). Here the block RAM drives only
    this register (no reset, so no reset net on its 8 * rows flip-flops).

    Both stages advance together (`advance` = output empty or taken), as in `BufferReader`: with
    `o` stalled, the read port holds the next word and no address is accepted.
    """

    LATENCY = 2

    def elaborate(self, platform) -> Module:
        m = Module()
        advance = self._read_port(m)
        read_valid = Signal()   # a word is in the port's data register
        out_data = Signal(self.shape, reset_less=True)
        m.d.comb += self.o.payload.data.eq(out_data)
        with m.If(advance):
            m.d.sync += [read_valid.eq(self.a.valid), self.o.valid.eq(read_valid),
                         out_data.eq(self.rd.data)]
            if self._has_tag:
                read_tag = Signal(self.tag_shape, reset_less=True)
                m.d.sync += [read_tag.eq(self.a.payload.tag), self.o.payload.tag.eq(read_tag)]
        return m
