"""AXI4 read engine: strided descriptors in, buffer words out, in buffer order.

Serves LOADs (3-D strided descriptors) and instruction fetch (a 1-D descriptor: size0 words,
count1 = count2 = 1). Every row of a descriptor becomes INCR bursts of at most
`max_burst_beats` beats that never cross a 4 KiB boundary (`BurstGenerator`). Up to
`outstanding` bursts are in flight: an address goes out as soon as there is room in the burst
FIFO, without waiting for earlier data, so the DRAM latency is paid once per stream of
descriptors, not once per burst. All reads use ARID 0, so the data returns in order.

Ports:
- `i`: In stream of `Descriptor` (hw/axi/bursts.py).
- `o`: Out stream of `word_layout`: `data` (the word in its low `bus_bytes << beats_log2`
  bytes, little-endian like DRAM; the bytes above are unspecified), `index` (the word's index
  in buffer order within its descriptor, 16 bits), `tag` (the descriptor's), `last` (the
  descriptor's final word) and `resp` (`AXIResp`: the first non-OKAY response among the word's
  beats, else OKAY). Payload and valid are registered.
- `bus`: Out `AXI4ReadSignature` (master). ARID, ARCACHE (0b0011, normal non-cacheable
  bufferable) and ARPROT (0) are constant; RID is ignored.
- `busy`: Out, high from the cycle after a descriptor is accepted until its last word has
  left `o`.
- `error`: Out `AXIResp`, sticky: the first non-OKAY read response since reset (for
  standalone use; the top level instead stops the controller on the word whose response
  was not OKAY, hw/top.py, and reports ErrorCode.BUS_ERROR).

Latency: descriptor accepted in cycle t -> ARVALID in cycle t+1 -> (slave) -> the last beat
of a word accepted in cycle u -> the word valid on `o` in cycle u+1.
Throughput: one beat per cycle when RVALID and `o.ready` allow it: RREADY is high whenever
the output register is empty or being emptied, and the address side issues one burst per
cycle. Streaming without stalls, N beats whose first beat comes L cycles after the AR
handshake: descriptor handshake in cycle t, last word handshake in cycle t + N + L + 1
(tested, also across descriptors and 4 KiB splits).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.config import AcceleratorConfig
from hw.fifo_level import next_level

from .bursts import (AXCACHE, MAX_BEATS_LOG2, BurstGenerator, Descriptor, check_engine_params,
                     default_max_word_bytes, first_error)
from .signatures import AXI4ReadSignature, AXIBurst, AXIResp

__all__ = ["ReadDMA", "word_layout"]


def word_layout(max_word_bytes: int) -> data.StructLayout:
    """The payload of `ReadDMA.o` for words of up to `max_word_bytes` bytes."""
    return data.StructLayout({"data": 8 * max_word_bytes, "index": 16, "tag": 4, "last": 1,
                              "resp": AXIResp})


class ReadDMA(wiring.Component):
    """See the module docstring. Parameters: `config` (bus width, id width, burst length),
    `max_word_bytes` (width of `o.payload.data`, default `default_max_word_bytes(config)`),
    `outstanding` (bursts in flight, default 16: hides 15 cycles of latency even when every
    burst is a single beat, and 240 cycles with 16-beat bursts)."""

    def __init__(self, *, config: AcceleratorConfig, max_word_bytes: int | None = None,
                 outstanding: int = 16) -> None:
        if max_word_bytes is None and isinstance(config, AcceleratorConfig):
            max_word_bytes = default_max_word_bytes(config)
        self.max_beats = check_engine_params(config, max_word_bytes, outstanding)
        self.config = config
        self.max_word_bytes = max_word_bytes
        self.outstanding = outstanding
        self.word_layout = word_layout(max_word_bytes)
        super().__init__({
            "i": In(stream.Signature(Descriptor)),
            "o": Out(stream.Signature(self.word_layout)),
            "bus": Out(AXI4ReadSignature(data_bits=config.axi_data_bits,
                                         id_bits=config.axi_id_bits,
                                         addr_bits=config.axi_addr_bits)),
            "busy": Out(1),
            "error": Out(AXIResp),
        })

    def elaborate(self, platform):
        m = Module()
        bus, o = self.bus, self.o
        data_bits = self.config.axi_data_bits
        m.submodules.bursts = bursts = BurstGenerator(
            data_bits=data_bits, max_burst_beats=self.config.max_burst_beats)
        wiring.connect(m, wiring.flipped(self.i), bursts.i)

        # What the data side needs to know about each burst in flight.
        info = data.StructLayout({"beats_log2": 3, "last": 1, "tag": 4})
        m.submodules.inflight = inflight = SyncFIFO(width=info.size, depth=self.outstanding)
        burst = bursts.o.payload
        # The FIFO's w_rdy (level != depth) again as a flip-flop, formed from the next level:
        # it gates ARVALID and the burst generator's o.ready, whose i.ready reaches the LOAD
        # unit and the controller's queues (the level compare sat in front of them).
        room = Signal(init=1)
        m.d.sync += room.eq(next_level(inflight) != self.outstanding)
        m.d.comb += [
            bus.arvalid.eq(bursts.o.valid & room),
            bus.araddr.eq(burst.addr), bus.arlen.eq(burst.len),
            bus.arsize.eq(bus.signature.size_log2), bus.arburst.eq(AXIBurst.INCR),
            bus.arcache.eq(AXCACHE),
            bursts.o.ready.eq(bus.arready & room),
            inflight.w_en.eq(bursts.o.valid & bus.arready & room),
            inflight.w_data.eq(Cat(burst.beats_log2, burst.last, burst.tag)),
        ]

        head = data.View(info, inflight.r_data)
        beat_index = Signal(MAX_BEATS_LOG2)
        word_index = Signal(16)
        word_resp = Signal(AXIResp)
        beat = Signal()
        word_end = Signal()
        m.d.comb += [
            bus.rready.eq(inflight.r_rdy & (~o.valid | o.ready)),
            beat.eq(bus.rvalid & bus.rready),
            word_end.eq(beat_index == (Const(1, MAX_BEATS_LOG2 + 1) << head.beats_log2) - 1),
            inflight.r_en.eq(beat & bus.rlast),
        ]

        # Beats of a multi-beat word wait here; the word's final beat goes straight to `o`.
        held = [Signal(data_bits, name=f"held{n}") for n in range(self.max_beats - 1)]
        for n, slot in enumerate(held):
            with m.If(beat & (beat_index == n)):
                m.d.sync += slot.eq(bus.rdata)
        word = Cat(*(Mux(beat_index == n, bus.rdata, slot) for n, slot in enumerate(held)),
                   bus.rdata)

        resp = first_error(word_resp, bus.rresp)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(beat):
            with m.If(word_end):
                is_last = bus.rlast & head.last
                m.d.sync += [o.valid.eq(1), o.payload.data.eq(word),
                             o.payload.index.eq(word_index), o.payload.tag.eq(head.tag),
                             o.payload.last.eq(is_last), o.payload.resp.eq(resp),
                             beat_index.eq(0), word_resp.eq(AXIResp.OKAY),
                             word_index.eq(Mux(is_last, 0, word_index + 1))]
            with m.Else():
                m.d.sync += [beat_index.eq(beat_index + 1), word_resp.eq(resp)]
            m.d.sync += self.error.eq(first_error(self.error, bus.rresp))

        m.d.comb += self.busy.eq(bursts.busy | inflight.r_rdy | o.valid)
        return m
