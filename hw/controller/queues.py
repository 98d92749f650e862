"""One instruction queue (LOAD, COMPUTE or STORE) with its token gate and in-flight record.

The queue holds dispatched instructions in program order. Its head goes to the execution
unit only when the tokens it pops are available; on acceptance the pops happen and the
instruction's push flags and program index move to an in-flight FIFO. The unit reports
completions in acceptance order with `done`; each completion pops the in-flight FIFO and
raises the instruction's push strobes for the token counters. Units may accept the next
instruction before finishing the current one (the compute unit preloads weights), up to
`in_flight` instructions.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..isa import INSTR_BITS, Header
from .layouts import INDEX_BITS, QueueEntry

__all__ = ["InstructionQueue"]


class _InFlight(data.Struct):
    push_prev: 1
    push_next: 1
    index: INDEX_BITS


class InstructionQueue(wiring.Component):
    """Ports:
      i (In stream QueueEntry): dispatched instructions; `ready` is the FIFO's room and does
        not depend on `valid`.
      o (Out stream 256): the head instruction word towards the execution unit; valid when
        the head is present, its pop tokens are available (`has_prev`/`has_next`), the
        in-flight FIFO has room, and `halt` is 0. A transfer pops the queue.
      has_prev, has_next (In 1): the token counters this queue pops from are non-zero.
      pop_prev, pop_next (Out 1): strobes, one token consumed (in the cycle of the transfer).
      done (In 1): strobe from the unit, the oldest accepted instruction finished.
      push_prev, push_next (Out 1): strobes in the cycle of `done`, per the finished
        instruction's flags; done_index (Out INDEX_BITS): its program index.
      halt (In 1): offer nothing more (the run stopped on an error).
      empty (Out 1): no queued instruction; waiting (Out 1): the head is present but a token
        it pops is missing; waiting_prev, waiting_next (Out 1): which one (both may be high);
        idle (Out 1): no instruction accepted and unfinished.

    Latency: an instruction written on `i` in cycle t can be offered on `o` in cycle t+2
    (SyncFIFOBuffered: memory then output register). Throughput: one per cycle.
    """

    def __init__(self, *, config: AcceleratorConfig, in_flight: int = 4) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
            raise ValueError(f"in_flight must be a positive integer, not {in_flight!r}")
        self._config = config
        self._in_flight = in_flight
        super().__init__({
            "i": In(stream.Signature(QueueEntry)),
            "o": Out(stream.Signature(INSTR_BITS)),
            "has_prev": In(1), "has_next": In(1),
            "pop_prev": Out(1), "pop_next": Out(1),
            "done": In(1),
            "push_prev": Out(1), "push_next": Out(1), "done_index": Out(INDEX_BITS),
            "halt": In(1),
            "empty": Out(1), "waiting": Out(1), "idle": Out(1),
            "waiting_prev": Out(1), "waiting_next": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=QueueEntry.as_shape().size,
                                                    depth=self._config.queue_depth)
        # SyncFIFO reads its memory combinationally, so an instruction accepted in cycle t
        # can complete (`done`) from cycle t+1 on.
        m.submodules.flight = flight = SyncFIFO(width=_InFlight.as_shape().size,
                                                depth=self._in_flight)
        m.d.comb += [fifo.w_data.eq(self.i.payload), fifo.w_en.eq(self.i.valid),
                     self.i.ready.eq(fifo.w_rdy)]

        head = data.View(QueueEntry, fifo.r_data)
        header = Header(head.word[:Header.as_shape().size])
        tokens_ok = (~header.pop_prev | self.has_prev) & (~header.pop_next | self.has_next)
        take = Signal()
        m.d.comb += [
            self.o.payload.eq(head.word),
            self.o.valid.eq(fifo.r_rdy & tokens_ok & flight.w_rdy & ~self.halt),
            take.eq(self.o.valid & self.o.ready),
            fifo.r_en.eq(take),
            self.pop_prev.eq(take & header.pop_prev),
            self.pop_next.eq(take & header.pop_next),
            flight.w_en.eq(take),
            flight.w_data.eq(Cat(header.push_prev, header.push_next, head.index)),
            self.empty.eq(fifo.level == 0),
            self.waiting.eq(fifo.r_rdy & ~tokens_ok),
            self.waiting_prev.eq(fifo.r_rdy & header.pop_prev & ~self.has_prev),
            self.waiting_next.eq(fifo.r_rdy & header.pop_next & ~self.has_next),
            self.idle.eq(~flight.r_rdy),
        ]

        finished = data.View(_InFlight, flight.r_data)
        finish = Signal()
        m.d.comb += [
            finish.eq(self.done & flight.r_rdy),
            flight.r_en.eq(finish),
            self.push_prev.eq(finish & finished.push_prev),
            self.push_next.eq(finish & finished.push_next),
            self.done_index.eq(finished.index),
        ]
        return m
