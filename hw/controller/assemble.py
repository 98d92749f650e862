"""Bus beats -> 256-bit instruction words, for the fetcher's `words` port.

The read DMA returns `axi_data_bits`-wide beats (32 on tiny, 128 on default, 256 on large);
an instruction word is 256 bits, lowest address in the lowest bits, so 256 / axi_data_bits
consecutive beats make one word. Fetch requests are whole instruction words at 32-byte
aligned addresses, so a word never starts inside a beat as long as a beat is at most 256 bits.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..isa import INSTR_BITS

__all__ = ["BeatAssembler"]


class BeatAssembler(wiring.Component):
    """Ports:
      i (In stream axi_data_bits): DMA read beats in address order.
      o (Out stream 256): instruction words.

    Latency: a word is valid on `o` the cycle after its last beat is accepted (registered;
    a plain connection when beats are 256 bits). Throughput: one beat per cycle, also
    while a finished word is taken: `i.ready` only falls while a word waits on `o`
    (never behind the fetcher, whose `words.ready` is always 1).
    """

    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if config.axi_data_bits > INSTR_BITS:
            raise ValueError(f"BeatAssembler needs beats of at most {INSTR_BITS} bits (one "
                             f"instruction word), not axi_data_bits={config.axi_data_bits}")
        self._beat_bits = config.axi_data_bits
        super().__init__({
            "i": In(stream.Signature(self._beat_bits)),
            "o": Out(stream.Signature(INSTR_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        ratio = INSTR_BITS // self._beat_bits
        if ratio == 1:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
            return m
        word = Signal(INSTR_BITS)
        count = Signal(range(ratio + 1))
        full = count == ratio
        m.d.comb += [self.o.valid.eq(full), self.o.payload.eq(word),
                     self.i.ready.eq(~full | self.o.ready)]
        take = self.i.valid & self.i.ready
        with m.If(take):
            m.d.sync += [word.eq(Cat(word[self._beat_bits:], self.i.payload)),
                         count.eq(Mux(full, 1, count + 1))]
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += count.eq(0)
        return m
