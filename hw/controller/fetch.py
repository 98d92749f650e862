"""Instruction fetcher: reads the program from DRAM ahead of the dispatcher, stops at END.

The fetcher asks the read DMA for runs of 256-bit instruction words and puts what comes back
into a prefetch FIFO in program order. It only asks for words it has room for (credit =
`prefetch_words` - FIFO level - words requested and not yet received), so it never
backpressures the DMA: `words.ready` is always 1, and the read DMA, shared with LOAD, can
never be held up by a dispatcher waiting for a queue. The top level assembles the DMA's bus
beats (`axi_data_bits` wide) into 256-bit words, lowest address in the lowest bits.
"""

from amaranth.hdl import Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..isa import INSTR_BITS, INSTR_BYTES, ErrorCode, Header, Opcode
from .layouts import ADDR_BITS, INDEX_BITS, FetchedWord, FetchRequest

__all__ = ["InstructionFetcher"]

_WORD_SHIFT = (INSTR_BYTES - 1).bit_length()   # 5: byte address -> word address


class InstructionFetcher(wiring.Component):
    """Prefetches instruction words of one program run.

    Ports:
      start (In 1): pulse; samples `address` (bytes) and `length` (instructions). Only
        pulse it while `busy` is 0.
      halt (In 1): level; stop requesting, drop arriving words (the run stopped on an error).
      busy (Out 1): words have been requested and not yet received; a new run must wait.
      req (Out stream FetchRequest): read `words` (<= request_words) instruction words from
        byte `address`; held valid until accepted.
      words (In stream 256): the requested words in order; `ready` is always 1.
      o (Out stream FetchedWord): the program's words in order; after the last word it may
        fetch, one fault marker: DRAM_RANGE when `length` words (or the end of DRAM) are
        reached without END, MISALIGNED (first and only entry) when `address` is not a
        multiple of 32. Nothing follows a word whose opcode is END or a marker.

    Latency: a word received on `words` in cycle t is on `o` in cycle t+2 (FIFO with an
    output register). Throughput: one word per cycle while the DMA delivers one per cycle and
    its round trip is below (prefetch_words - request_words) cycles.
    """

    def __init__(self, *, config: AcceleratorConfig, request_words: int = 4,
                 prefetch_words: int = 16) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if isinstance(request_words, bool) or not isinstance(request_words, int) \
                or not 1 <= request_words <= 256:
            raise ValueError(f"request_words must be an integer from 1 to 256, "
                             f"not {request_words!r}")
        if isinstance(prefetch_words, bool) or not isinstance(prefetch_words, int) \
                or prefetch_words < request_words:
            raise ValueError(f"prefetch_words must be an integer of at least request_words "
                             f"({request_words}), not {prefetch_words!r}")
        self._config = config
        self._request_words = request_words
        self._prefetch_words = prefetch_words
        super().__init__({
            "start": In(1), "address": In(ADDR_BITS), "length": In(INDEX_BITS),
            "halt": In(1), "busy": Out(1),
            "req": Out(stream.Signature(FetchRequest)),
            "words": In(stream.Signature(INSTR_BITS)),
            "o": Out(stream.Signature(FetchedWord)),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self._prefetch_words
        fifo = SyncFIFOBuffered(width=FetchedWord.as_shape().size, depth=depth)
        m.submodules.fifo = ResetInserter(self.start)(fifo)

        next_address = Signal(ADDR_BITS)
        remaining = Signal(INDEX_BITS)            # words not yet requested
        outstanding = Signal(range(depth + 1))    # requested (or about to be), not received
        stopped = Signal(init=1)
        fault = Signal(ErrorCode)

        m.d.comb += [
            self.busy.eq(outstanding != 0),
            self.words.ready.eq(1),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
        ]

        # `remaining < request_words` and `remaining != 0` as flip-flops, set with `remaining`
        # (32-bit compares in front of `issue` were a carry chain deep on the ECP5).
        few = Signal()
        more = Signal()
        run = Signal(range(self._request_words + 1))
        m.d.comb += run.eq(Mux(few, remaining, self._request_words))
        issue = Signal()
        m.d.comb += issue.eq(~self.start & ~self.req.valid & ~stopped & ~self.halt
                             & more & (fifo.level + outstanding + run <= depth))
        with m.If(self.req.valid & self.req.ready):
            m.d.sync += self.req.valid.eq(0)
        with m.If(issue):
            m.d.sync += [
                self.req.valid.eq(1),
                self.req.payload.address.eq(next_address),
                self.req.payload.words.eq(run),
                next_address.eq(next_address + (run << _WORD_SHIFT)),
                remaining.eq(remaining - run),
                few.eq(remaining - run < self._request_words),
                more.eq(remaining != run),
            ]

        arrive = self.words.valid
        keep = arrive & ~stopped & ~self.halt
        marker = Signal()
        m.d.comb += marker.eq(~stopped & ~self.halt & ~more & (outstanding == 0)
                              & ~self.req.valid & fifo.w_rdy)
        m.d.sync += outstanding.eq(outstanding + Mux(issue, run, 0) - arrive)
        with m.If(keep):
            m.d.comb += [fifo.w_en.eq(1), fifo.w_data.eq(self.words.payload)]
            with m.If(Header(self.words.payload[:Header.as_shape().size]).opcode == Opcode.END):
                m.d.sync += stopped.eq(1)
        with m.Elif(marker):
            m.d.comb += [fifo.w_en.eq(1), data.View(FetchedWord, fifo.w_data).fault.eq(fault)]
            m.d.sync += stopped.eq(1)
        with m.If(self.halt):
            m.d.sync += stopped.eq(1)

        # Words of the program that lie inside DRAM: a run reaching past them stops with
        # DRAM_RANGE at the first word outside, as one past the program's length does.
        dram = Const(self._config.dram_bytes, ADDR_BITS + 1)
        in_dram = Signal(ADDR_BITS + 1)
        m.d.comb += in_dram.eq(Mux(self.address < dram, (dram - self.address) >> _WORD_SHIFT, 0))
        # At `start`, `few` and `more` of min(length, in_dram) (0 if misaligned) from compares
        # of the inputs with constants, beside the subtract and compare that form `remaining`,
        # not after them: min(a, b) < R is a < R or b < R; in_dram < R is address >
        # dram - 32 R; in_dram != 0 is address <= dram - 32 (both constants are positive:
        # the config's dram_bytes is at least 64 KiB, 32 R at most 8 KiB).
        with m.If(self.start):
            aligned = self.address[:_WORD_SHIFT] == 0
            near_end = self.address > self._config.dram_bytes - INSTR_BYTES * self._request_words
            inside = self.address <= self._config.dram_bytes - INSTR_BYTES
            m.d.sync += [
                next_address.eq(self.address),
                remaining.eq(Mux(aligned, Mux(self.length < in_dram, self.length, in_dram), 0)),
                few.eq(~aligned | (self.length < self._request_words) | near_end),
                more.eq(aligned & (self.length != 0) & inside),
                fault.eq(Mux(aligned, ErrorCode.DRAM_RANGE, ErrorCode.MISALIGNED)),
                stopped.eq(0),
            ]
        return m
