"""The load unit: executes LOAD instructions with the read DMA.

Each LOAD becomes one DMA descriptor (the instruction's DRAM pattern, with the word size of its
target buffer) and a pending entry (buffer, buf_addr). Words come back in order with their index
within the descriptor and leave on `wr` as buffer writes at `buf_addr + index`; the top level
routes them to the buffer's write port. Descriptors are issued while earlier LOADs still
receive data (up to `pending` LOADs in flight), so DRAM latency is paid once per run of LOADs.

Ports:
  instr  In(stream of 256-bit LOAD words)   from the controller's load queue
  desc   Out(stream of Descriptor)          to the read DMA (tag 0)
  words  In(stream of the read DMA's words) the LOADs' data, in order
  wr     Out(stream of LoadWrite)           {buffer, addr, data}: one buffer word per element;
                                            `ready` may be low only for words of LUT and OBUF
                                            (`word_bytes` wide), the others are taken at once
  done   Out(1)                             strobe: a LOAD's last word left `wr`

Latency: instruction accepted in cycle t -> descriptor valid in t+1. A word on `words` in cycle
u -> on `wr` in cycle u (combinational). Throughput: one word per cycle.

`wr` leaves through a skid buffer, so `words.ready` is a flip-flop and the buffers' readiness
(the activation tables' load, the output buffer's compute port) does not reach the read DMA and
DRAM combinationally. While `wr` is ready the words pass straight through; when it stalls, one
more word waits in the buffer, and `done` still strobes after the last word has left `wr`.
Only the buffers that can stall (LUT, OBUF) have words that can wait, so the buffer keeps the
low `word_bytes` of a word's data (32 instead of 276 flip-flops and muxes on the OrangeCrab,
whose 25F has no LUTs to spare); above them `wr` always shows the DMA's current word.
"""

from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.axi.bursts import Descriptor, default_max_word_bytes, word_beats_log2
from hw.axi.read_dma import word_layout
from hw.config import AcceleratorConfig
from hw.isa import INSTR_BITS, Buffer, LoadStoreLayout
from hw.skid import SkidBuffer

__all__ = ["LoadUnit", "load_write_layout", "descriptor_of"]


def descriptor_of(desc, instr, *, beats_log2, tag: int = 0) -> list:
    """Statements setting DMA descriptor `desc` from a LOAD/STORE view: its DRAM pattern."""
    return [desc.dram_addr.eq(instr.dram_addr), desc.size0.eq(instr.size0),
            desc.count1.eq(instr.count1), desc.stride1.eq(instr.stride1),
            desc.count2.eq(instr.count2), desc.stride2.eq(instr.stride2),
            desc.beats_log2.eq(beats_log2), desc.tag.eq(tag)]


def load_write_layout(config: AcceleratorConfig) -> data.StructLayout:
    return data.StructLayout({"buffer": Buffer, "addr": 16,
                              "data": 8 * default_max_word_bytes(config)})


class LoadUnit(wiring.Component):
    def __init__(self, *, config: AcceleratorConfig, pending: int = 4) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if isinstance(pending, bool) or not isinstance(pending, int) or pending < 1:
            raise ValueError(f"pending must be a positive integer, not {pending!r}")
        self.config = config
        self.pending = pending
        super().__init__({
            "instr": In(stream.Signature(INSTR_BITS)),
            "desc": Out(stream.Signature(Descriptor)),
            "words": In(stream.Signature(word_layout(default_max_word_bytes(config)))),
            "wr": Out(stream.Signature(load_write_layout(config))),
            "done": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.config
        entry = data.StructLayout({"buffer": Buffer, "addr": 16})
        m.submodules.inflight = inflight = SyncFIFO(width=entry.size, depth=self.pending)
        load = data.View(LoadStoreLayout, self.instr.payload[:data.Layout.cast(LoadStoreLayout).size])

        # Issue: one descriptor per LOAD, once there is room to remember where its words go.
        beats_word = word_beats_log2(cfg, cfg.word_bytes)
        beats_param = word_beats_log2(cfg, cfg.pbuf_word_bytes)
        with m.If(self.desc.ready | ~self.desc.valid):
            m.d.sync += self.desc.valid.eq(0)
            with m.If(self.instr.valid & inflight.w_rdy):
                m.d.sync += [self.desc.valid.eq(1), *descriptor_of(
                    self.desc.payload, load,
                    beats_log2=Mux(load.buffer == Buffer.PBUF, beats_param, beats_word))]
        accept = self.instr.valid & inflight.w_rdy & (self.desc.ready | ~self.desc.valid)
        m.d.comb += [
            self.instr.ready.eq(accept),
            inflight.w_en.eq(accept),
            inflight.w_data.eq(Cat(load.buffer, load.buf_addr)),
        ]

        # Data: each word to its buffer address, with its LOAD's last word marked for `done`.
        head = data.View(entry, inflight.r_data)
        narrow = 8 * cfg.word_bytes
        out = data.StructLayout({"buffer": Buffer, "addr": 16, "low": narrow, "last": 1})
        m.submodules.skid = skid = SkidBuffer(out)
        m.d.comb += [
            skid.i.valid.eq(self.words.valid & inflight.r_rdy),
            skid.i.payload.buffer.eq(head.buffer),
            skid.i.payload.addr.eq(head.addr + self.words.payload.index),
            skid.i.payload.low.eq(self.words.payload.data[:narrow]),
            skid.i.payload.last.eq(self.words.payload.last),
            self.words.ready.eq(skid.i.ready & inflight.r_rdy),
            inflight.r_en.eq(skid.i.valid & skid.i.ready & self.words.payload.last),
            self.wr.valid.eq(skid.o.valid),
            self.wr.payload.buffer.eq(skid.o.payload.buffer),
            self.wr.payload.addr.eq(skid.o.payload.addr),
            self.wr.payload.data.eq(Cat(skid.o.payload.low, self.words.payload.data[narrow:])),
            skid.o.ready.eq(self.wr.ready),
        ]
        m.d.sync += self.done.eq(skid.o.valid & skid.o.ready & skid.o.payload.last)
        return m
