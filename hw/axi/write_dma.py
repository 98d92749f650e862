"""AXI4 write engine: strided descriptors plus a stream of buffer words in, INCR write bursts
out, and one completion per descriptor once every burst of it is acknowledged.

Every row of a descriptor becomes INCR bursts of at most `max_burst_beats` beats that never
cross a 4 KiB boundary (`BurstGenerator`). A burst's address goes out as soon as there is room
in the W and B FIFOs, its data as soon as the words are there (the engine never waits for
AWREADY before WVALID, as AXI requires), and up to `outstanding` bursts may wait for their B
response. All writes use AWID 0 with full strobes (the config makes every word a whole
number of beats). The read engine is a separate component, so loads and stores overlap.

Ports:
- `i`: In stream of `Descriptor` (hw/axi/bursts.py); the buffer words are taken in buffer
  order, word `(i2*count1 + i1)*size0 + i0` to its DRAM address.
- `words`: In stream of `8 * max_word_bytes`-bit words, little-endian like DRAM; only the low
  `bus bytes << beats_log2` bytes of each are written.
- `done`: Out stream of `{tag, resp}`: one per descriptor, in order, when all its B responses
  are in; `resp` is the first non-OKAY response among them, else OKAY. Registered.
- `bus`: Out `AXI4WriteSignature` (master). AWID, AWCACHE (0b0011) and AWPROT (0) are
  constant; BID is ignored.
- `busy`: Out, high from the cycle after a descriptor is accepted until its completion has
  left `done`.
- `error`: Out `AXIResp`, sticky: the first non-OKAY write response since reset.

Latency: descriptor accepted in cycle t -> AWVALID in cycle t+2 -> WVALID of its first beat
in cycle t+3 when the word is waiting. A B response accepted in cycle u that completes a
descriptor -> `done` valid in cycle u+1.
Throughput: one W beat per cycle when words arrive and WREADY allows, across bursts and
descriptors; BREADY is high while a burst is outstanding and `done` has room.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.config import AcceleratorConfig

from .bursts import (AXCACHE, MAX_BEATS_LOG2, BurstGenerator, Descriptor, check_engine_params,
                     default_max_word_bytes, first_error)
from .signatures import AXI4WriteSignature, AXIBurst, AXIResp

__all__ = ["WriteDMA"]


class WriteDMA(wiring.Component):
    """See the module docstring. Parameters: `config` (bus width, id width, burst length),
    `max_word_bytes` (width of `words`, default `default_max_word_bytes(config)`),
    `outstanding` (bursts waiting for B, default 16)."""

    def __init__(self, *, config: AcceleratorConfig, max_word_bytes: int | None = None,
                 outstanding: int = 16) -> None:
        if max_word_bytes is None and isinstance(config, AcceleratorConfig):
            max_word_bytes = default_max_word_bytes(config)
        self.max_beats = check_engine_params(config, max_word_bytes, outstanding)
        self.config = config
        self.max_word_bytes = max_word_bytes
        self.outstanding = outstanding
        self.done_layout = data.StructLayout({"tag": 4, "resp": AXIResp})
        super().__init__({
            "i": In(stream.Signature(Descriptor)),
            "words": In(stream.Signature(8 * max_word_bytes)),
            "done": Out(stream.Signature(self.done_layout)),
            "bus": Out(AXI4WriteSignature(data_bits=config.axi_data_bits,
                                          id_bits=config.axi_id_bits,
                                          addr_bits=config.axi_addr_bits)),
            "busy": Out(1),
            "error": Out(AXIResp),
        })

    def elaborate(self, platform):
        m = Module()
        bus, done, words = self.bus, self.done, self.words
        data_bits = self.config.axi_data_bits
        m.submodules.bursts = bursts = BurstGenerator(
            data_bits=data_bits, max_burst_beats=self.config.max_burst_beats)
        wiring.connect(m, wiring.flipped(self.i), bursts.i)

        # One burst goes to the AW register, the W FIFO and the B FIFO in the same cycle.
        w_info = data.StructLayout({"len": 8, "beats_log2": 3})
        b_info = data.StructLayout({"last": 1, "tag": 4})
        m.submodules.w_fifo = w_fifo = SyncFIFO(width=w_info.size, depth=self.outstanding)
        m.submodules.b_fifo = b_fifo = SyncFIFO(width=b_info.size, depth=self.outstanding)
        burst = bursts.o.payload
        take = Signal()
        m.d.comb += [
            bursts.o.ready.eq((~bus.awvalid | bus.awready) & w_fifo.w_rdy & b_fifo.w_rdy),
            take.eq(bursts.o.valid & bursts.o.ready),
            w_fifo.w_en.eq(take), w_fifo.w_data.eq(Cat(burst.len, burst.beats_log2)),
            b_fifo.w_en.eq(take), b_fifo.w_data.eq(Cat(burst.last, burst.tag)),
            bus.awsize.eq(bus.signature.size_log2), bus.awburst.eq(AXIBurst.INCR),
            bus.awcache.eq(AXCACHE),
        ]
        with m.If(take):
            m.d.sync += [bus.awvalid.eq(1), bus.awaddr.eq(burst.addr), bus.awlen.eq(burst.len)]
        with m.Elif(bus.awready):
            m.d.sync += bus.awvalid.eq(0)

        # W: the head burst's beats, cut from the input words; registered outputs.
        head = data.View(w_info, w_fifo.r_data)
        burst_beat = Signal(8)
        word_beat = Signal(MAX_BEATS_LOG2)
        load = Signal()
        beat = Signal()
        word_end = Signal()
        burst_end = Signal()
        m.d.comb += [
            load.eq(~bus.wvalid | bus.wready),
            word_end.eq(word_beat == (Const(1, MAX_BEATS_LOG2 + 1) << head.beats_log2) - 1),
            burst_end.eq(burst_beat == head.len),
            words.ready.eq(load & w_fifo.r_rdy & word_end),
            beat.eq(load & w_fifo.r_rdy & words.valid),
            w_fifo.r_en.eq(beat & burst_end),
            bus.wstrb.eq(-1),
        ]
        with m.If(beat):
            m.d.sync += [bus.wvalid.eq(1),
                         bus.wdata.eq(words.payload.word_select(word_beat, data_bits)),
                         bus.wlast.eq(burst_end),
                         word_beat.eq(Mux(word_end, 0, word_beat + 1)),
                         burst_beat.eq(Mux(burst_end, 0, burst_beat + 1))]
        with m.Elif(bus.wready):
            m.d.sync += bus.wvalid.eq(0)

        # B: count responses against the bursts in flight; complete descriptors in order.
        b_head = data.View(b_info, b_fifo.r_data)
        b_resp = Signal(AXIResp)
        response = Signal()
        m.d.comb += [
            bus.bready.eq(b_fifo.r_rdy & (~done.valid | done.ready)),
            response.eq(bus.bvalid & bus.bready),
            b_fifo.r_en.eq(response),
        ]
        resp = first_error(b_resp, bus.bresp)
        with m.If(done.ready):
            m.d.sync += done.valid.eq(0)
        with m.If(response):
            m.d.sync += self.error.eq(first_error(self.error, bus.bresp))
            with m.If(b_head.last):
                m.d.sync += [done.valid.eq(1), done.payload.tag.eq(b_head.tag),
                             done.payload.resp.eq(resp), b_resp.eq(AXIResp.OKAY)]
            with m.Else():
                m.d.sync += b_resp.eq(resp)

        m.d.comb += self.busy.eq(bursts.busy | bus.awvalid | w_fifo.r_rdy | bus.wvalid
                                 | b_fifo.r_rdy | done.valid)
        return m
