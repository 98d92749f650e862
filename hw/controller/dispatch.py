"""Dispatcher: moves checked instructions in program order into the three queues.

It keeps the program counter (index of the next instruction, as sim/functional.py's `pc`)
and follows the functional model's dispatch loop: an `early` error (fetch fault or a word
`decode` rejects) stops the run as soon as the dispatcher reaches it; END ends dispatching
(the program counter stays on END); any other instruction waits until its queue has room,
and then either enters it or, if it has a `check` or token-flag error, stops the run.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..isa import ErrorCode, Header, Opcode, Queue
from .layouts import INDEX_BITS, CheckedWord, QueueEntry

__all__ = ["Dispatcher"]


class Dispatcher(wiring.Component):
    """Ports:
      i (In stream CheckedWord): checked words in program order.
      load, compute, store (Out stream QueueEntry): towards the queues. The dispatcher reads
        `ready` of the target queue without asserting `valid` to decide that an instruction
        with a late error has reached a free slot; the queues' `ready` (FIFO room) does not
        depend on `valid`, so this is well defined.
      halt (In 1): dispatch nothing more (the run stopped).
      error (Out 1): strobe, the instruction at `pc` stops the run with `code`.
      code (Out ErrorCode): the error of the current word (valid with `error`).
      pc (Out INDEX_BITS): index of the next instruction to dispatch (END's index once ended).
      ended (Out 1): END was dispatched.
      stalled (Out 1): the current instruction waits for room in its queue (also one with a
        late error: that error is only raised once there is room).

    Latency: 0 cycles (a word on `i` is written to its queue or raises `error` in the same
    cycle). Throughput: one instruction per cycle.
    """

    def __init__(self) -> None:
        super().__init__({
            "i": In(stream.Signature(CheckedWord)),
            "load": Out(stream.Signature(QueueEntry)),
            "compute": Out(stream.Signature(QueueEntry)),
            "store": Out(stream.Signature(QueueEntry)),
            "halt": In(1),
            "error": Out(1), "code": Out(ErrorCode), "pc": Out(INDEX_BITS),
            "ended": Out(1), "stalled": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        word = self.i.payload.word
        header = Header(word[:Header.as_shape().size])
        ports = {Queue.LOAD: self.load, Queue.COMPUTE: self.compute, Queue.STORE: self.store}
        opcodes = {Queue.LOAD: (Opcode.LOAD,), Queue.STORE: (Opcode.STORE,),
                   Queue.COMPUTE: (Opcode.CONV, Opcode.POOL, Opcode.ADD)}
        room = Signal()
        target = {q: Signal(name=f"to_{q.name.lower()}") for q in Queue}
        with m.Switch(header.opcode):
            for q, ops in opcodes.items():
                with m.Case(*ops):
                    m.d.comb += [room.eq(ports[q].ready), target[q].eq(1)]

        active = self.i.valid & ~self.halt & ~self.ended
        early = self.i.payload.early
        legal = self.i.payload.code == ErrorCode.NONE
        is_end = legal & (header.opcode == Opcode.END)
        m.d.comb += [
            self.code.eq(self.i.payload.code),
            self.error.eq(active & ~legal & (early | room)),
            self.stalled.eq(active & (legal | ~early) & ~is_end & ~room),
            self.i.ready.eq(active & (is_end | room)),
        ]
        for q, port in ports.items():
            m.d.comb += [
                port.payload.word.eq(word),
                port.payload.index.eq(self.pc),
                port.valid.eq(active & legal & target[q]),
            ]
        with m.If(active & legal & room & ~is_end):
            m.d.sync += self.pc.eq(self.pc + 1)
        with m.If(active & is_end):
            m.d.sync += self.ended.eq(1)
        return m
