"""The store unit: executes STORE instructions with the write DMA.

Each STORE becomes one write-DMA descriptor (its DRAM pattern, one output-buffer word per
element) and one linear read of `size0 * count1 * count2` output-buffer words from `buf_addr`,
which stream into the DMA in buffer order. The DMA reports each descriptor's completion (all B
responses in) in order; the unit turns that into `done`. The next STORE is issued while
earlier ones still stream, so writes run back to back.

Ports:
  instr  In(stream of 256-bit STORE words)   from the controller's store queue
  desc   Out(stream of Descriptor)           to the write DMA
  reads  Out(stream of {base, count})        to the output buffer's linear reader
  words  In(stream of output-buffer words)   from that reader
  data   Out(stream of DMA words)            to the write DMA (zero above the word)
  completion  In(stream of {tag, resp})      the write DMA's `done`
  done   Out(1)                              strobe: a STORE finished

Latency: instruction accepted in cycle t -> descriptor and read command valid in t+3 (two
cycles to form the word count). Throughput: one word per cycle.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.axi.bursts import Descriptor, default_max_word_bytes, word_beats_log2
from hw.axi.signatures import AXIResp
from hw.config import AcceleratorConfig
from hw.isa import INSTR_BITS, LoadStoreLayout

from .load import descriptor_of


__all__ = ["StoreUnit"]


class StoreUnit(wiring.Component):
    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config = config
        super().__init__({
            "instr": In(stream.Signature(INSTR_BITS)),
            "desc": Out(stream.Signature(Descriptor)),
            "reads": Out(stream.Signature(data.StructLayout({"base": 16, "count": 17}))),
            "words": In(stream.Signature(8 * config.word_bytes)),
            "data": Out(stream.Signature(8 * default_max_word_bytes(config))),
            "completion": In(stream.Signature(data.StructLayout({"tag": 4, "resp": AXIResp}))),
            "done": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.config
        store = data.View(LoadStoreLayout,
                          self.instr.payload[:data.Layout.cast(LoadStoreLayout).size])
        latched = Signal(LoadStoreLayout)
        count = Signal(34)
        desc_sent, read_sent = Signal(), Signal()

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.instr.ready.eq(1)
                with m.If(self.instr.valid):
                    m.d.sync += latched.eq(store)
                    m.next = "ROWS"
            with m.State("ROWS"):
                m.d.sync += count.eq(latched.size0 * latched.count1)
                m.next = "WORDS"
            with m.State("WORDS"):
                m.d.sync += [count.eq(count * latched.count2), desc_sent.eq(0),
                             read_sent.eq(0)]
                m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += [
                    self.desc.valid.eq(~desc_sent),
                    self.reads.valid.eq(~read_sent),
                ]
                with m.If(self.desc.ready):
                    m.d.sync += desc_sent.eq(1)
                with m.If(self.reads.ready):
                    m.d.sync += read_sent.eq(1)
                with m.If((desc_sent | self.desc.ready) & (read_sent | self.reads.ready)):
                    m.next = "IDLE"

        m.d.comb += descriptor_of(self.desc.payload, latched,
                                  beats_log2=word_beats_log2(cfg, cfg.word_bytes))
        m.d.comb += [
            self.reads.payload.base.eq(latched.buf_addr),
            self.reads.payload.count.eq(count),
            # Words pass straight through to the DMA.
            self.data.valid.eq(self.words.valid),
            self.data.payload.eq(self.words.payload),
            self.words.ready.eq(self.data.ready),
            self.completion.ready.eq(1),
        ]
        m.d.sync += self.done.eq(self.completion.valid)
        return m
