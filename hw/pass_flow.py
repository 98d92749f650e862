"""Flow control for a fixed-latency datapath that never stalls and runs in passes.

Post-processing and the element-wise unit are deep arithmetic pipelines (8 and 7 stages). A
pipeline that stalls on `o.ready` drives one enable net to every one of its registers (~5,000
flip-flops for 16 post-processing lanes), a fan-out that costs Fmax on ECP5, and makes
`i.ready` depend combinationally on `o.ready`. Instead the datapath always advances and
`PassFlow` admits an element only when the output FIFO is sure to have room for it (credits):
`latency + 2` entries keep one element per clock flowing with `o.ready` high (an element holds
its credit from the cycle it enters until the cycle it leaves, `latency + 1` cycles later, and
the credit count is registered).

Per-pass parameters arrive on `cmd` with the pass's element count. One command waits in a
pending register while the current pass runs and takes over after its last element, so passes
follow each other without a bubble; the parameters travel with the data through the datapath.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.fifo_level import next_level

__all__ = ["PassFlow"]


class PassFlow(wiring.Component):
    """Pass sequencing, credit-based admission and the output FIFO around a datapath.

    Ports
    -----
    cmd : In(stream of {params: params_shape, count: unsigned(count_bits)})
        Parameters for the next `count` elements of `i`. Accepted while no other command is
        pending (`cmd.ready = 1` whenever the pending register is empty); a command with count
        0 is skipped.
    i : In(stream of data_shape)
        Accepted (`i.ready = 1`) while a pass has elements left, the credit count is below the
        FIFO depth and `hold` is low. `i.ready` does not depend on `i.valid` or `o.ready`.
    o : Out(stream of result_shape)
        The datapath results in order, from the FIFO.
    dp_i : Out(always-ready stream of {data, params})
        Valid in the cycle an element is accepted on `i`, with its pass's parameters.
    dp_o : In(always-ready stream of result_shape)
        The datapath's result, `latency` cycles after `dp_i`.
    hold : In(1)
        Keeps new elements out (e.g. while the activation table is being written).
    idle : Out(1)
        No command pending, no pass running and every result taken from `o`.

    Latency: `latency + 1` cycles from `i` to `o` (one for the FIFO); throughput one element per
    clock; a new pass's first element can enter 2 cycles after its command when idle, or right
    after the previous pass's last element when the command was already pending.
    """

    def __init__(self, *, data_shape, params_shape, result_shape, count_bits: int,
                 latency: int) -> None:
        if not isinstance(count_bits, int) or count_bits < 1:
            raise ValueError(f"count_bits must be a positive integer, not {count_bits!r}")
        if not isinstance(latency, int) or latency < 1:
            raise ValueError(f"latency must be a positive integer, not {latency!r}")
        self.latency = latency
        self.depth = latency + 2
        self.result_width = Shape.cast(result_shape).width
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "params": params_shape, "count": unsigned(count_bits)}))),
            "i": In(stream.Signature(data_shape)),
            "o": Out(stream.Signature(result_shape)),
            "dp_i": Out(stream.Signature(data.StructLayout({
                "data": data_shape, "params": params_shape}), always_ready=True)),
            "dp_o": In(stream.Signature(result_shape, always_ready=True)),
            "hold": In(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cmd_shape = self.cmd.payload.shape()
        pending = Signal(cmd_shape)
        pending_valid = Signal()
        active = Signal(cmd_shape["params"].shape)
        remaining = Signal(cmd_shape["count"].shape)
        # Registered flags for `remaining != 0`, `remaining == 1` and `credits < depth`, so that
        # `i.ready` is an AND of flip-flops (`hold` is one too): with 16 post-processing lanes
        # the compares in front of `i.ready` and the 1,000-bit parameter switch behind it were
        # the critical path without them (8 ns of routing, 105 MHz after place and route).
        running = Signal()
        final = Signal()
        room = Signal(init=1)
        credits = Signal(range(self.depth + 1))   # elements admitted and not yet taken from o

        m.submodules.fifo = out = fifo.SyncFIFO(width=self.result_width, depth=self.depth)

        take_in = self.i.valid & self.i.ready
        take_out = self.o.valid & self.o.ready
        # The FIFO's r_rdy (level != 0) again as a flip-flop, formed from the next level:
        # `o.valid` reaches the consumer's handshake (the output-buffer writer's last-word
        # strobe) from a register instead of through the level compare.
        holds = Signal()
        m.d.sync += holds.eq(next_level(out) != 0)
        m.d.comb += [
            self.cmd.ready.eq(~pending_valid),
            self.i.ready.eq(running & room & ~self.hold),
            self.dp_i.valid.eq(take_in),
            self.dp_i.payload.data.eq(self.i.payload),
            self.dp_i.payload.params.eq(active),
            out.w_en.eq(self.dp_o.valid),
            out.w_data.eq(self.dp_o.payload),
            self.o.valid.eq(holds),
            self.o.payload.eq(out.r_data),
            out.r_en.eq(self.o.ready),
            self.idle.eq(~pending_valid & ~running & (credits == 0)),
        ]
        credits_next = Signal.like(credits)
        m.d.comb += credits_next.eq(credits + take_in - take_out)
        m.d.sync += [credits.eq(credits_next), room.eq(credits_next < self.depth)]

        with m.If(take_in):
            m.d.sync += [remaining.eq(remaining - 1), running.eq(~final),
                         final.eq(remaining == 2)]
        with m.If(pending_valid & (~running | (final & take_in))):
            m.d.sync += [active.eq(pending.params), remaining.eq(pending.count),
                         running.eq(pending.count != 0), final.eq(pending.count == 1),
                         pending_valid.eq(0)]
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [pending.eq(self.cmd.payload), pending_valid.eq(1)]
        return m
