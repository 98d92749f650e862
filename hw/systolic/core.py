"""The systolic core: weight loading, the array and the column adder as one streaming block.

It computes, for every output pixel p streamed in as chunks d (each `rows` int8 lanes
x[p, d, r]), the `columns` wrapped partial sums

    partial[p, c] = sum_d sum_r x[p, d, r] * w[d, c, r]      (acc_bits, two's complement)

with w[d, c, r] = lane r of weight word d * columns + c of the bank the chunk names: exactly
the einsum of `sim.functional`'s CONV before the accumulator and post-processing.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .array import SystolicArray
from .column_adder import ColumnAdder
from .delay import delayed
from .pe import context_bits, psum_bits

__all__ = ["SystolicCore", "BankState", "chunk_layout", "weight_word_layout", "sums_layout"]


def chunk_layout(config: AcceleratorConfig) -> data.StructLayout:
    """Payload of `i`: `data` (lane r at bits 8r..8r+7, as in a buffer word), `context`
    (the chunk's weight context d < contexts), `bank`, `last` (last chunk of its pixel) and
    `release` (no later chunk uses this bank's weights: the bank may be reloaded)."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(8), config.rows),
        "context": unsigned(context_bits(config.contexts)),
        "bank": unsigned(1),
        "last": unsigned(1),
        "release": unsigned(1),
    })


def weight_word_layout(config: AcceleratorConfig) -> data.StructLayout:
    """Payload of `w_in`: one weight-buffer word (`data`, lane r = row r), the `bank` it
    fills and `last` (final word of the load)."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(8), config.rows),
        "bank": unsigned(1),
        "last": unsigned(1),
    })


def sums_layout(config: AcceleratorConfig) -> data.ArrayLayout:
    """Payload of `o`: column c's partial sum at bits c*acc_bits .. (c+1)*acc_bits-1."""
    return data.ArrayLayout(signed(config.acc_bits), config.columns)


class BankState(enum.Enum, shape=2):
    EMPTY = 0      #: `w_in` may fill it; chunks naming it wait
    LOADED = 1     #: chunks may use it; `w_in` words naming it wait
    DRAINING = 2   #: a `release` chunk is still reading it; both wait


class SystolicCore(wiring.Component):
    """Weight-stationary systolic core with two weight banks and a per-column adder.

    Parameters (keyword-only): config (AcceleratorConfig): rows = lanes, columns,
    contexts, acc_bits.

    Ports
    -----
    w_in : In(stream.Signature(weight_word_layout(config)))
        Weight words of one load in weight-buffer order, d-major: word d * columns + c goes
        to column c, context d (d < contexts). A load fills one bank from context 0 and ends
        with the word flagged `last`; every word of it names the same bank. Loading d <
        contexts words per column is allowed (passes with chunk_count < contexts).
    i : In(stream.Signature(chunk_layout(config)))
        Chunks; each names its weight `context` and `bank`. A pixel is the run of chunks up
        to one flagged `last`; its chunks may use any contexts in any order.
    o : Out(stream.Signature(sums_layout(config)))
        One payload per pixel, in order: its `columns` partial sums.

    Bank handshake (the core enforces it, so weight and chunk producers run independently)
    ----------------------------------------------------------------------------------------
    Each bank is EMPTY after reset. `w_in` accepts a word only while its bank is EMPTY; the
    word flagged `last` makes the bank LOADED. `i` accepts a chunk only while its bank is
    LOADED; a chunk flagged `release` makes the bank DRAINING, and EMPTY again when the
    last PE has read that chunk's weights: `rows + columns` advances after the cycle the
    release chunk was accepted (so, without stalls, a reload's first word is accepted
    exactly rows + columns cycles after the release chunk). `w_in.ready` and `i.ready`
    depend on the bank field of their own payload: each selects one of two registers that
    hold, per bank, "EMPTY" and "LOADED with room in the pipeline", formed from the next
    bank states and skid flag (the same values one edge earlier), so a producer's `ready`
    path is its own bank field and one LUT.

    A pass flags `release` on its last chunk; a pass whose successor on the same bank uses
    the same weights leaves it clear and the successor sends no load (a LOADED bank is
    never reloaded without a release: such a load would wait for ever). With every pass
    releasing, the producers need no other ordering: chunks of a pass wait until its load
    has ended, its load waits until the previous pass on that bank has drained. Loading one
    bank overlaps a pass on the other fully; a reload of the bank just released is hidden
    when the pass on the other bank has at least rows + columns + chunk_count * columns - 1
    chunks (else exactly the difference is lost as a gap).

    Backpressure
    ------------
    The whole pipeline advances together (one clock enable). A 2-entry output stage (the `o`
    register and a skid register) takes results while `o` is stalled; the pipeline and `i`
    stop only while the skid register is full, so the clock enable is a register output,
    not a path from `o.ready`. Gaps on `i` travel through as bubbles. Nothing is lost or
    duplicated; `w_in` does not depend on the pipeline's advance.

    Latency and throughput
    ----------------------
    One chunk per cycle (one weight word per cycle on `w_in`). `latency` = rows + columns
    + 3 cycles from the cycle a pixel's last chunk is accepted on `i` to the cycle its sums
    are first valid on `o` (with no stall in between): the array's rows + columns + 2
    (array.py) and 1 output register; the column adder adds no cycle. So a
    pass of P pixels x nk chunks, sent without gaps, has its last result on `o` exactly
    P * nk + rows + columns + 2 cycles after the cycle its first chunk was accepted, and
    passes sent back to back (their weights loaded during the pass before) add up with no
    bubble: (P1 * nk1 + P2 * nk2 + rows + columns + 2). The last word of a load may be
    accepted in the cycle before the first chunk that uses it.
    """

    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config = config
        super().__init__({
            "w_in": In(stream.Signature(weight_word_layout(config))),
            "i": In(stream.Signature(chunk_layout(config))),
            "o": Out(stream.Signature(sums_layout(config))),
        })

    @property
    def latency(self) -> int:
        """Cycles from accepting a pixel's last chunk to its sums on `o` (no stalls)."""
        return self.config.rows + self.config.columns + 3

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.config
        m.submodules.array = array = SystolicArray(
            rows=cfg.rows, columns=cfg.columns, contexts=cfg.contexts)
        m.submodules.adder = adder = ColumnAdder(
            columns=cfg.columns, psum_bits=psum_bits(cfg.rows), acc_bits=cfg.acc_bits)

        skid = Signal(sums_layout(cfg), reset_less=True)
        skid_valid = Signal()
        skid_valid_next = Signal()
        advance = Signal()
        m.d.comb += advance.eq(~skid_valid)
        m.d.sync += skid_valid.eq(skid_valid_next)

        states = [Signal(BankState, name=f"bank{b}_state") for b in range(2)]
        states_next = [Signal(BankState, name=f"bank{b}_state_next") for b in range(2)]
        # Per bank: ~skid_valid & state == LOADED, and state == EMPTY, as registers.
        takes_chunks = [Signal(name=f"bank{b}_takes_chunks") for b in range(2)]
        takes_words = [Signal(name=f"bank{b}_takes_words", init=1) for b in range(2)]
        for b in range(2):
            m.d.comb += states_next[b].eq(states[b])
            m.d.sync += [
                states[b].eq(states_next[b]),
                takes_chunks[b].eq(~skid_valid_next & (states_next[b] == BankState.LOADED)),
                takes_words[b].eq(states_next[b] == BankState.EMPTY),
            ]
        chunk, word = self.i.payload, self.w_in.payload
        take = Signal()
        m.d.comb += [
            self.i.ready.eq(Mux(chunk.bank, takes_chunks[1], takes_chunks[0])),
            take.eq(self.i.valid & self.i.ready),
            self.w_in.ready.eq(Mux(word.bank, takes_words[1], takes_words[0])),
        ]

        # ---- chunks through the array and the column adder -------------------------------
        m.d.comb += [
            array.en.eq(advance),
            array.data.eq(chunk.data),
            array.context.eq(chunk.context),
            array.bank.eq(chunk.bank),
            adder.en.eq(advance),
            adder.valid.eq(delayed(m, advance, take, array.latency, name="valid",
                                   reset_less=False)),
            adder.last.eq(delayed(m, advance, chunk.last, array.latency, name="last")),
            adder.psums.eq(array.psums),
        ]

        # ---- weight load: one register stage, then the array's write bus -----------------
        column = Signal(range(cfg.columns))
        context = Signal(unsigned(context_bits(cfg.contexts)))   # 1 bit even for 1 context
        w_take = Signal()
        m.d.comb += w_take.eq(self.w_in.valid & self.w_in.ready)
        m.d.sync += array.w_en.eq(w_take)
        with m.If(w_take):
            m.d.sync += [
                array.w_column.eq(column),
                array.w_addr.eq(Cat(context, word.bank)),
                array.w_data.eq(word.data),
            ]
            with m.If(word.last):
                m.d.sync += [column.eq(0), context.eq(0)]
            with m.Elif(column == cfg.columns - 1):
                m.d.sync += [column.eq(0), context.eq(context + 1)]
            with m.Else():
                m.d.sync += column.eq(column + 1)

        # ---- bank handshake --------------------------------------------------------------
        for b, (state, state_next) in enumerate(zip(states, states_next)):
            # Advances left in DRAINING: the one that accepts the release chunk is advance 1,
            # the first one in DRAINING advance 2, so the bank turns EMPTY at the edge of
            # advance `last_read`, the last PE's read of that chunk's weights.
            drain = Signal(range(array.last_read), name=f"bank{b}_drain")
            with m.Switch(state):
                with m.Case(BankState.EMPTY):
                    with m.If(w_take & (word.bank == b) & word.last):
                        m.d.comb += state_next.eq(BankState.LOADED)
                with m.Case(BankState.LOADED):
                    with m.If(take & (chunk.bank == b) & chunk.release):
                        m.d.comb += state_next.eq(BankState.DRAINING)
                        m.d.sync += drain.eq(array.last_read - 2)
                with m.Case(BankState.DRAINING):
                    with m.If(advance):
                        with m.If(drain == 0):
                            m.d.comb += state_next.eq(BankState.EMPTY)
                        with m.Else():
                            m.d.sync += drain.eq(drain - 1)

        # ---- output register and skid register ---------------------------------------------
        m.d.comb += skid_valid_next.eq(skid_valid)
        with m.If(~self.o.valid | self.o.ready):
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1)]
                m.d.comb += skid_valid_next.eq(0)
            with m.Else():
                m.d.sync += [self.o.payload.eq(adder.sums), self.o.valid.eq(adder.done)]
        with m.Elif(adder.done):
            m.d.sync += skid.eq(adder.sums)
            m.d.comb += skid_valid_next.eq(1)
        return m
