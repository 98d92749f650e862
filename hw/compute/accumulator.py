"""Accumulator stage: adds a pass's partial sums to the accumulator buffer or passes them on.

A reduction that needs more chunks than the PEs hold weight contexts runs as several passes
(docs/isa.md, CONV). For each output pixel p of a pass this stage computes
`sum = wrap(partial[p] + (ACC[acc_addr + p] if accumulate else 0))` per column, then writes the
sum back to the accumulator buffer (intermediate pass) or sends it on to post-processing
(`output` pass). Each word is read ahead, when the command (first word) or the previous
pixel is taken, and held in the read port until its pixel comes, so that the block RAM's
output goes to a register rather than into the add. The read port must be transparent for
the write port: a pass's second word can be read in the cycle the previous pass's last sum is
written; its first word, read the cycle before, is taken from the written sum instead
(one-pixel passes back to back, as in a fully connected layer).

Ports:
  cmd  In(stream of AccumulateCommand)   one per pass, before its pixels
  i    In(stream of C x acc_bits)         partial sums, one pixel per element
  o    Out(stream of C x acc_bits)        sums of `output` passes, to post-processing
  rd   drives a transparent ReadPort of the accumulator buffer
  wr   drives its WritePort
  done Out(1)                             strobe: an intermediate pass's last sum is written

Latency: 1 cycle from `i` to `o`; an intermediate pass's sum is written one edge later
(`done` rises with its last write). Throughput: 1 pixel per cycle.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import AcceleratorConfig, address_bits

__all__ = ["AccumulateCommand", "Accumulator", "acc_word_layout"]


def acc_word_layout(config: AcceleratorConfig) -> data.ArrayLayout:
    """One accumulator-buffer word: `columns` signed acc_bits values."""
    return data.ArrayLayout(signed(config.acc_bits), config.columns)


class AccumulateCommand(data.Struct):
    acc_addr: 16
    pixels: 20
    accumulate: 1
    output: 1


class Accumulator(wiring.Component):
    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config = config
        self.layout = acc_word_layout(config)
        addr_width = address_bits(config.acc_words)
        super().__init__({
            "cmd": In(stream.Signature(AccumulateCommand)),
            "i": In(stream.Signature(self.layout)),
            "o": Out(stream.Signature(self.layout)),
            "rd": In(memory.ReadPort.Signature(addr_width=addr_width, shape=self.layout)),
            "wr": In(memory.WritePort.Signature(addr_width=addr_width, shape=self.layout)),
            "done": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        pass_ = Signal(AccumulateCommand)
        active = Signal()          # a pass is running
        remaining = Signal(20)     # pixels of the pass not yet accepted
        addr = Signal(16)          # accumulator address of the next pixel
        addr_next = Signal(16)     # addr + 1
        # The read port always holds the word at `addr`: it reads the pass's first word when
        # the command is taken and the next pixel's word when a pixel is taken, so that the
        # word is a register away from the add (the block RAM's slow output ends at a flip-flop).
        # Stage 1: the pixel accepted last cycle with its accumulator word.
        s1_valid, s1_output, s1_accumulate, s1_last = Signal(), Signal(), Signal(), Signal()
        s1_addr = Signal(16)
        s1_partial = Signal(self.layout)
        s1_previous = Signal(self.layout)
        # The one read a write can overtake: a pass's first word, read when the command is
        # taken, the cycle before the previous pass's last sum is written (a one-pixel pass
        # after a one-pixel pass). Then that pixel adds the written sum (`w_data`, unchanged
        # until the pixel's own sum is written) instead of the read word.
        overtaken = Signal()
        s1_overtaken = Signal()

        stalled = s1_valid & s1_output & ~self.o.ready
        take = active & self.i.valid & ~stalled
        start = self.cmd.valid & ~active
        writes = s1_valid & ~s1_output

        m.d.comb += [
            self.cmd.ready.eq(~active),
            self.i.ready.eq(active & ~stalled),
            self.rd.en.eq(start | take),
            self.rd.addr.eq(Mux(start, self.cmd.payload.acc_addr, addr_next)),
        ]
        with m.If(start):
            m.d.sync += [pass_.eq(self.cmd.payload), active.eq(1),
                         remaining.eq(self.cmd.payload.pixels),
                         addr.eq(self.cmd.payload.acc_addr),
                         addr_next.eq(self.cmd.payload.acc_addr + 1),
                         overtaken.eq(writes & (s1_addr == self.cmd.payload.acc_addr))]
        with m.If(take):
            m.d.sync += [addr.eq(addr_next), addr_next.eq(addr_next + 1),
                         remaining.eq(remaining - 1), overtaken.eq(0)]
            with m.If(remaining == 1):
                m.d.sync += active.eq(0)
        with m.If(~stalled):
            m.d.sync += [s1_valid.eq(take), s1_output.eq(pass_.output),
                         s1_accumulate.eq(pass_.accumulate), s1_addr.eq(addr),
                         s1_last.eq(remaining == 1), s1_overtaken.eq(overtaken),
                         s1_partial.eq(self.i.payload), s1_previous.eq(self.rd.data)]

        # The write goes out one edge after its sum, from registers (the sum's carry chains
        # then end at fabric registers, not at the block RAM's data inputs). Within a pass the
        # addresses increase; a later pass's words are read no earlier than the cycle before
        # the previous pass's last write (its command is taken once that pass is inactive):
        # the cycle of the write is served by the read port's transparency, the cycle before
        # by `overtaken`.
        w_data = Signal(self.layout)
        total = Signal(self.layout)
        m.d.sync += [self.wr.en.eq(writes), self.done.eq(writes & s1_last)]
        with m.If(writes):
            m.d.sync += [self.wr.addr.eq(s1_addr), w_data.eq(total)]
        previous = data.View(self.layout, Mux(s1_overtaken, w_data, s1_previous))
        m.d.comb += [
            total.eq(Cat((s1_partial[c] + Mux(s1_accumulate, previous[c], 0))
                         [:self.config.acc_bits] for c in range(self.config.columns))),
            self.o.valid.eq(s1_valid & s1_output),
            self.o.payload.eq(total),
            self.wr.data.eq(w_data),
        ]
        return m
