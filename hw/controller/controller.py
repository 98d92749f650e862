"""The instruction controller: fetch -> check -> dispatch -> LOAD / COMPUTE / STORE queues,
ordered by dependency tokens, stopping with an error code instead of hanging.

`start` begins a run at `program_address` (bytes) for at most `program_length` instructions.
Instructions leave on three unit-facing streams (`load`, `compute`, `store`) when their pop
tokens are there; each unit pulses its `*_done` once per accepted instruction, in order, and
the controller then counts the instruction's pushes. The run ends (`busy` falls, `done` rises)
after END once every queue is empty and every unit has finished, or after an error: then
nothing more is dispatched or offered, the units finish what they accepted (no abort: a DMA
burst is never cut), the fetcher drains its outstanding reads, and `error`/`error_index`
show the first error and the index of the instruction that raised it, as
`sim.functional.MachineError` has them.

Bus errors: the top level strobes `fetch_bus_error`, `load_bus_error` or `store_bus_error`
when the AXI slave answers SLVERR or DECERR; the run then stops with BUS_ERROR like any other
error (the bursts already on the bus are still completed by the DMA engines, so the
interconnect is never left mid-transaction). The first error of a run wins; in one cycle the
controller's own errors (token overflow, dispatch error, deadlock) come before a bus error.

Deadlock: when the dispatcher cannot progress (it reached END, or its instruction's queue is
full), no unit has an unfinished instruction, some queue is non-empty and every non-empty
queue's head waits for a token, nothing can change any more: the run stops with DEADLOCK at
the dispatcher's program counter (sim/functional.py's `pc`).
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..isa import INSTR_BITS, ErrorCode, Header, Opcode, Queue
from .checker import CHECK_LATENCY, InstructionChecker
from .dispatch import Dispatcher
from .fetch import InstructionFetcher
from .layouts import ADDR_BITS, INDEX_BITS, FetchRequest
from .queues import InstructionQueue
from .tokens import TokenCounters, TokenLink

__all__ = ["Controller", "COUNTER_BITS", "START_TO_FIRST_REQUEST", "WORD_TO_UNIT"]

#: default counter width: 42 s at 100 MHz before wrapping, one AXI-Lite register each
COUNTER_BITS = 32
#: cycles from the `start` pulse to the first valid fetch request
START_TO_FIRST_REQUEST = 2
#: cycles from a fetched word on `fetch_words` to its instruction on an idle queue's unit
#: stream: fetcher FIFO 2 + checker CHECK_LATENCY (4) + dispatch into the queue FIFO 2
WORD_TO_UNIT = 2 + CHECK_LATENCY + 2


class Controller(wiring.Component):
    """Ports:
      start (In 1): pulse; ignored while `busy`. Samples program_address (In 32, bytes, a
        multiple of 32, else MISALIGNED at index 0) and program_length (In 32, instructions).
      busy (Out 1): a run is in progress (from the cycle after `start`).
      done (Out 1): the last run finished; 0 before the first run, held until the next start.
      finish (Out 1): strobe in the last busy cycle (`busy` falls and `done` rises after it):
        for the interrupt.
      error (Out ErrorCode), error_index (Out 32): the run's first error and its instruction
        index (NONE and 0 after a clean END); valid while `done` and in the `finish` cycle.
        Both are muxes after registers (see below).
      fetch_req (Out stream FetchRequest), fetch_words (In stream 256): see
        `InstructionFetcher` (`fetch_words.ready` is always 1; `BeatAssembler` turns DMA beats
        into words).
      load, compute, store (Out stream 256): instruction words towards the units. Once valid,
        a word stays valid until accepted, except when the run stops on an error (then it is
        withdrawn).
      load_done, compute_done, store_done (In 1): strobe, the oldest accepted and unfinished
        instruction of that unit finished; at most `in_flight` may be accepted and unfinished
        (a unit is offered nothing more meanwhile). A strobe with nothing accepted is ignored.
      fetch_bus_error (In 1): strobe, the instruction word arriving on `fetch_words` this
        cycle had a SLVERR/DECERR response (BUS_ERROR at that word's program index; ignored
        for words prefetched after an END).
      load_bus_error, store_bus_error (In 1): strobe, a data word of the oldest unfinished
        LOAD / the completion of the oldest unfinished STORE had a SLVERR/DECERR response
        (BUS_ERROR at that instruction's index).
      compute_waits_load, compute_waits_store, any_waits (Out 1): this cycle, the compute
        queue's head waits for a token from the load queue / from the store queue, and some
        queue's head waits for a token (the CSR's stall counters count these).
      cycles (Out counter_bits): busy cycles of the current/last run; wait_load, wait_compute,
        wait_store (Out counter_bits): busy cycles in which that queue's head waited for a
        dependency token.

    Latency: START_TO_FIRST_REQUEST = 2 cycles from `start` to the first request; WORD_TO_UNIT
    = 8 cycles from a fetched word to its unit stream (idle queue, tokens there); `finish`
    comes 1 cycle after the last `*_done` strobe (or 1 cycle after END is dispatched if all is
    idle then). Throughput: one instruction per cycle through fetch, check and dispatch; a
    program of N instructions + END with a 2-cycle memory and 1-cycle units is busy for
    N + 13 cycles (tests/hw/controller/test_controller.py).
    """

    def __init__(self, *, config: AcceleratorConfig, request_words: int = 4,
                 prefetch_words: int = 16, in_flight: int = 4,
                 counter_bits: int = COUNTER_BITS) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if isinstance(counter_bits, bool) or not isinstance(counter_bits, int) \
                or not 8 <= counter_bits <= 64:
            raise ValueError(f"counter_bits must be an integer from 8 to 64, not "
                             f"{counter_bits!r}")
        self._config = config
        self.fetcher = InstructionFetcher(config=config, request_words=request_words,
                                          prefetch_words=prefetch_words)
        self.checker = InstructionChecker(config=config)
        self.dispatcher = Dispatcher()
        self.queues = {q: InstructionQueue(config=config, in_flight=in_flight) for q in Queue}
        self.tokens = TokenCounters(config=config)
        super().__init__({
            "start": In(1), "program_address": In(ADDR_BITS), "program_length": In(INDEX_BITS),
            "busy": Out(1), "done": Out(1), "finish": Out(1),
            "error": Out(ErrorCode), "error_index": Out(INDEX_BITS),
            "fetch_req": Out(stream.Signature(FetchRequest)),
            "fetch_words": In(stream.Signature(INSTR_BITS)),
            "load": Out(stream.Signature(INSTR_BITS)),
            "compute": Out(stream.Signature(INSTR_BITS)),
            "store": Out(stream.Signature(INSTR_BITS)),
            "load_done": In(1), "compute_done": In(1), "store_done": In(1),
            "fetch_bus_error": In(1), "load_bus_error": In(1), "store_bus_error": In(1),
            "compute_waits_load": Out(1), "compute_waits_store": Out(1), "any_waits": Out(1),
            "cycles": Out(counter_bits), "wait_load": Out(counter_bits),
            "wait_compute": Out(counter_bits), "wait_store": Out(counter_bits),
        })

    def elaborate(self, platform):
        m = Module()
        begin = Signal()
        m.d.comb += begin.eq(self.start & ~self.busy)
        fetcher, checker, dispatcher, tokens = (self.fetcher, self.checker, self.dispatcher,
                                                self.tokens)
        queues = self.queues
        # Everything but the fetcher restarts empty; the fetcher keeps counting the reads it
        # has outstanding across runs (a run only ends once they have arrived).
        m.submodules.fetcher = fetcher
        m.submodules.checker = ResetInserter(begin)(checker)
        m.submodules.dispatcher = ResetInserter(begin)(dispatcher)
        m.submodules.tokens = ResetInserter(begin)(tokens)
        for q, queue in queues.items():
            m.submodules[f"{q.name.lower()}_queue"] = ResetInserter(begin)(queue)

        # `failed`: the run stopped on an error. It is the OR of a flip-flop and of the error
        # strobes registered the cycle before (`pending`, below), so that it is high from
        # the cycle after the error, as if the error had been decided in its own cycle.
        failed = Signal()
        failed_before = Signal()
        halt = Signal()
        m.d.comb += [
            halt.eq(failed | ~self.busy),
            fetcher.start.eq(begin),
            fetcher.address.eq(self.program_address),
            fetcher.length.eq(self.program_length),
            fetcher.halt.eq(halt),
            dispatcher.halt.eq(halt),
        ]
        wiring.connect(m, wiring.flipped(self.fetch_req), fetcher.req)
        wiring.connect(m, wiring.flipped(self.fetch_words), fetcher.words)
        wiring.connect(m, fetcher.o, checker.i)
        wiring.connect(m, checker.o, dispatcher.i)
        units = {Queue.LOAD: (dispatcher.load, self.load, self.load_done, self.wait_load),
                 Queue.COMPUTE: (dispatcher.compute, self.compute, self.compute_done,
                                 self.wait_compute),
                 Queue.STORE: (dispatcher.store, self.store, self.store_done, self.wait_store)}
        for q, (dispatched, unit, unit_done, _) in units.items():
            wiring.connect(m, dispatched, queues[q].i)
            wiring.connect(m, queues[q].o, wiring.flipped(unit))
            m.d.comb += [queues[q].done.eq(unit_done), queues[q].halt.eq(halt)]

        # Token wiring: (queue, side) -> the counter it pops from / pushes into.
        pops = {(Queue.LOAD, "next"): TokenLink.COMPUTE_TO_LOAD,
                (Queue.COMPUTE, "prev"): TokenLink.LOAD_TO_COMPUTE,
                (Queue.COMPUTE, "next"): TokenLink.STORE_TO_COMPUTE,
                (Queue.STORE, "prev"): TokenLink.COMPUTE_TO_STORE}
        pushes = {(Queue.LOAD, "next"): TokenLink.LOAD_TO_COMPUTE,
                  (Queue.COMPUTE, "prev"): TokenLink.COMPUTE_TO_LOAD,
                  (Queue.COMPUTE, "next"): TokenLink.COMPUTE_TO_STORE,
                  (Queue.STORE, "prev"): TokenLink.STORE_TO_COMPUTE}
        pusher = {}
        for (q, side), link in pops.items():
            queue = queues[q]
            m.d.comb += [getattr(queue, f"has_{side}").eq(tokens.available[link.value]),
                         tokens.pop[link.value].eq(getattr(queue, f"pop_{side}"))]
        for (q, side), link in pushes.items():
            m.d.comb += tokens.push[link.value].eq(getattr(queues[q], f"push_{side}"))
            pusher[link] = q

        # Program index of the next word on `fetch_words`: no word of an earlier run can
        # still arrive, since a run only ends once the fetcher has no read outstanding. Words
        # prefetched after END are not part of the program, so their errors do not count.
        fetched = Signal(INDEX_BITS)
        past_end = Signal()
        with m.If(self.fetch_words.valid):
            m.d.sync += fetched.eq(fetched + 1)
            header = Header(self.fetch_words.payload[:Header.as_shape().size])
            with m.If(header.opcode == Opcode.END):
                m.d.sync += past_end.eq(1)

        # ---- errors -------------------------------------------------------------------------
        all_idle = Signal()
        any_queued = Signal()
        all_stuck = Signal()
        m.d.comb += [
            all_idle.eq(queues[Queue.LOAD].idle & queues[Queue.COMPUTE].idle
                        & queues[Queue.STORE].idle),
            any_queued.eq(~queues[Queue.LOAD].empty | ~queues[Queue.COMPUTE].empty
                          | ~queues[Queue.STORE].empty),
            all_stuck.eq((queues[Queue.LOAD].empty | queues[Queue.LOAD].waiting)
                         & (queues[Queue.COMPUTE].empty | queues[Queue.COMPUTE].waiting)
                         & (queues[Queue.STORE].empty | queues[Queue.STORE].waiting)),
        ]
        deadlock = Signal()
        m.d.comb += deadlock.eq((dispatcher.ended | dispatcher.stalled) & all_idle
                                & any_queued & all_stuck)
        # The instruction index an error names is one of these. The error strobes arrive late
        # in the cycle (a token overflow behind a unit's acceptance of the queue's head, a bus
        # error through the DMA's ready chain), so they are only registered (`pending`) in
        # their cycle; the next cycle picks the first error by priority from these registers
        # and the index from copies of the candidates taken in the strobes' cycle. `error`,
        # `error_index` and `failed` show that choice in that cycle already (a mux after the
        # registers) and hold it from the cycle after: the same cycles as if everything were
        # decided in the strobes' cycle (the CSR samples them with `finish`, at the earliest
        # that cycle).
        candidates = {Queue.LOAD: queues[Queue.LOAD].done_index,
                      Queue.COMPUTE: queues[Queue.COMPUTE].done_index,
                      Queue.STORE: queues[Queue.STORE].done_index,
                      "pc": dispatcher.pc, "fetched": fetched}
        slot = {key: n for n, key in enumerate(candidates)}
        live = self.busy & ~failed
        strobes = {"overflow": tokens.overflow, "dispatch": dispatcher.error,
                   "deadlock": deadlock, "fetch_bus": self.fetch_bus_error & ~past_end,
                   "load_bus": self.load_bus_error, "store_bus": self.store_bus_error}
        pending = {name: Signal(len(strobe), name=f"pending_{name}")
                   for name, strobe in strobes.items()}
        pending_code = Signal(ErrorCode)
        m.d.sync += [pending[name].eq(strobe & live.replicate(len(strobe)))
                     for name, strobe in strobes.items()]
        m.d.sync += pending_code.eq(dispatcher.code)
        raised = Signal()
        code = Signal(ErrorCode)
        pick = Signal(len(candidates))
        # `raised` (any pending error) is a flip-flop of its own: it is `halt`, whose fan-out
        # reaches every queue, the checker and the fetcher.
        m.d.sync += raised.eq(live & Cat(*strobes.values()).any())
        # In priority order: a token overflow (the oldest instruction: it has already been
        # dispatched), a dispatch error, a deadlock, a bus error.
        with m.If(pending["overflow"].any()):
            m.d.comb += code.eq(ErrorCode.TOKEN_OVERFLOW)
            for link in reversed(TokenLink):  # LOAD's pushes last: highest priority
                with m.If(pending["overflow"][link.value]):
                    m.d.comb += pick.eq(1 << slot[pusher[link]])
        with m.Elif(pending["dispatch"]):
            m.d.comb += [code.eq(pending_code), pick.eq(1 << slot["pc"])]
        with m.Elif(pending["deadlock"]):
            m.d.comb += [code.eq(ErrorCode.DEADLOCK), pick.eq(1 << slot["pc"])]
        for name, at in (("fetch_bus", "fetched"), ("load_bus", Queue.LOAD),
                         ("store_bus", Queue.STORE)):
            with m.Elif(pending[name]):
                m.d.comb += [code.eq(ErrorCode.BUS_ERROR), pick.eq(1 << slot[at])]
        error_held = Signal(ErrorCode)
        m.d.comb += [failed.eq(failed_before | raised),
                     self.error.eq(Mux(raised, code, error_held))]
        with m.If(raised):
            m.d.sync += [failed_before.eq(1), error_held.eq(code)]

        copies = [Signal(INDEX_BITS, name=f"index_copy{n}") for n in range(len(candidates))]
        m.d.sync += [copy.eq(value) for copy, value in zip(copies, candidates.values())]
        chosen = Signal(INDEX_BITS)
        m.d.comb += chosen.eq(reduce(operator.or_, (Mux(pick[n], copy, 0)   # one-hot
                                                    for n, copy in enumerate(copies))))
        held = Signal(INDEX_BITS)
        m.d.comb += self.error_index.eq(Mux(raised, chosen, held))
        with m.If(raised):
            m.d.sync += held.eq(chosen)

        finished = Signal()
        m.d.comb += finished.eq(self.busy & (failed | (dispatcher.ended & ~any_queued))
                                & all_idle & ~fetcher.busy)
        m.d.comb += self.finish.eq(finished)
        with m.If(finished):
            m.d.sync += [self.busy.eq(0), self.done.eq(1)]
        m.d.comb += [
            self.compute_waits_load.eq(self.busy & queues[Queue.COMPUTE].waiting_prev),
            self.compute_waits_store.eq(self.busy & queues[Queue.COMPUTE].waiting_next),
            self.any_waits.eq(self.busy & (queues[Queue.LOAD].waiting
                                           | queues[Queue.COMPUTE].waiting
                                           | queues[Queue.STORE].waiting)),
        ]
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            for q, (_, _, _, wait) in units.items():
                with m.If(queues[q].waiting):
                    m.d.sync += wait.eq(wait + 1)
        with m.If(begin):
            m.d.sync += [self.busy.eq(1), self.done.eq(0), failed_before.eq(0),
                         error_held.eq(ErrorCode.NONE), held.eq(0), fetched.eq(0),
                         past_end.eq(0), self.cycles.eq(0), self.wait_load.eq(0),
                         self.wait_compute.eq(0), self.wait_store.eq(0)]
        return m
