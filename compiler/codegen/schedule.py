"""Dependency tokens: order every conflicting buffer and DRAM access between the three queues.

The code generators emit instructions in one sequential order (each load just before its first
reader, each store just after its writer) and say which buffer words and DRAM bytes each
instruction reads and writes. `TokenScheduler` derives the push/pop flags:

- Hazards. For every access it finds the latest earlier instruction of each *other* queue that
  touched the same words (read after write, write after read, write after write). Accesses of
  one queue are ordered by the queue itself. DRAM is tracked by byte interval (the bounding
  interval of a strided pattern, which is conservative).
- Knowledge. Every instruction carries a vector clock: for each queue, the last instruction it
  knows has completed (its own queue's predecessor, plus whatever it learnt through the tokens
  it popped, transitively). A hazard already covered costs nothing.
- Tokens. A counter X->Y matches the n-th pop in Y with the n-th push in X. To make Y's
  instruction j wait for X's instruction i, the push goes on the *earliest* X instruction at or
  after i that follows X's previous push, and j pops; so every push is consumed by exactly one
  pop and no token is left over at END. LOAD and STORE are not neighbours: a store that must
  wait for a load (or the reverse) waits for a compute instruction that knows it.
- Token depth. The n-th push on X->Y is placed only on an instruction that knows the consumer
  of push n - token_depth has popped, so at most token_depth tokens are ever outstanding on
  any interleaving of the parallel queues (the functional model raises TOKEN_OVERFLOW beyond).
- Barriers. When no existing instruction can carry a needed token, a one-word dummy
  instruction is emitted in that queue. They touch only reserved scratch words chosen so that
  no two queues ever conflict on them: a dummy LOAD reads a never-written DRAM word into
  input-buffer word ibuf_words - 1 (read by nobody); a dummy ADD reads input-buffer word
  ibuf_words - 2 (written by nobody) into output-buffer word obuf_words - 1 (read by nobody);
  a dummy STORE writes output-buffer word obuf_words - 2 (written by nobody) to a DRAM word
  read by nobody. So they need no ordering and are not tracked.

The emission order is a valid sequential execution (every pop follows its push), which is why
the dispatcher's queue_depth limit can never deadlock: the earliest unexecuted instruction in
program order always has its tokens and is at the head of its queue.
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from hw import isa
from hw.config import AcceleratorConfig
from hw.isa import Buffer, Instruction, Queue

__all__ = ["Access", "TokenScheduler", "DRAM"]

#: Pseudo-space for DRAM accesses (byte addresses), next to the on-chip `Buffer`s.
DRAM = "DRAM"

_NEIGHBOURS: dict[Queue, dict[Queue, str]] = {
    Queue.LOAD: {Queue.COMPUTE: "next"},
    Queue.COMPUTE: {Queue.LOAD: "prev", Queue.STORE: "next"},
    Queue.STORE: {Queue.COMPUTE: "prev"},
}


@dataclass(frozen=True)
class Access:
    """Words [start, end) of an on-chip buffer, or bytes of DRAM, read or written."""
    space: Buffer | str
    start: int
    end: int
    write: bool


@dataclass
class _Item:
    queue: Queue
    instr: Instruction
    clock: tuple[int, int, int]          #: per queue, last instruction known complete at start
    flags: dict[str, bool] = field(default_factory=dict)


class TokenScheduler:
    """Collects instructions with their accesses; `program()` returns them with token flags."""

    def __init__(self, config: AcceleratorConfig, *, dram_scratch: int) -> None:
        """`dram_scratch`: 2 * word_bytes reserved DRAM bytes (barrier load source, barrier
        store destination)."""
        self.config = config
        self.items: list[_Item] = []
        self._by_queue: dict[Queue, list[int]] = {q: [] for q in Queue}
        self._known: dict[Queue, list[int]] = {q: [-1, -1, -1] for q in Queue}
        self._pushes: dict[tuple[Queue, Queue], list[int]] = {}
        self._pops: dict[tuple[Queue, Queue], list[int]] = {}
        for q, nbrs in _NEIGHBOURS.items():
            for x in nbrs:
                self._pushes[(x, q)] = []
                self._pops[(x, q)] = []
        sizes = {Buffer.IBUF: config.ibuf_words, Buffer.WBUF: config.wbuf_words,
                 Buffer.PBUF: config.pbuf_words, Buffer.LUT: config.lut_words,
                 Buffer.OBUF: config.obuf_words}
        # _last[space][is_write, queue, word] = index of the latest such access, or -1
        self._last = {space: np.full((2, 3, n), -1, np.int64) for space, n in sizes.items()}
        self._dram: dict[tuple[bool, Queue], list[tuple[int, int, int]]] = {
            (w, q): [] for w in (False, True) for q in Queue}
        ib, ob = config.ibuf_words, config.obuf_words
        self._dummies = {
            Queue.LOAD: isa.Load(buffer=Buffer.IBUF, buf_addr=ib - 1, dram_addr=dram_scratch,
                                 size0=1, count1=1, count2=1),
            Queue.COMPUTE: isa.Add(a_addr=ib - 2, b_addr=ib - 2, count=1, obuf_addr=ob - 1),
            Queue.STORE: isa.Store(buffer=Buffer.OBUF, buf_addr=ob - 2,
                                   dram_addr=dram_scratch + config.word_bytes, size0=1,
                                   count1=1, count2=1),
        }
        self.dummy_count: dict[str, int] = {q.name: 0 for q in Queue}

    # ---- public ---------------------------------------------------------------------------
    def emit(self, instr: Instruction, accesses: list[Access]) -> int:
        """Append `instr` after every instruction it conflicts with; returns its index."""
        q = instr.queue
        need: dict[Queue, int] = {}
        for acc in accesses:
            for x, index in self._hazards(q, acc).items():
                need[x] = max(need.get(x, -1), index)
        index = self._place(q, instr, need)
        for acc in accesses:
            self._record(q, acc, index)
        return index

    def program(self) -> list[Instruction]:
        """The instructions with their token flags, followed by END."""
        out = [dataclasses.replace(item.instr, **item.flags) for item in self.items]
        return out + [isa.End()]

    # ---- hazards --------------------------------------------------------------------------
    def _hazards(self, q: Queue, acc: Access) -> dict[Queue, int]:
        need: dict[Queue, int] = {}
        if acc.space == DRAM:
            kinds = [True] + ([False] if acc.write else [])
            for x in Queue:
                if x is q:
                    continue
                for kind in kinds:
                    for start, end, index in reversed(self._dram[(kind, x)]):
                        if start < acc.end and acc.start < end:
                            need[x] = max(need.get(x, -1), index)
                            break
            return need
        table = self._last[acc.space]
        for x in Queue:
            if x is q or acc.end <= acc.start:
                continue
            latest = int(table[1, x.value, acc.start:acc.end].max())
            if acc.write:
                latest = max(latest, int(table[0, x.value, acc.start:acc.end].max()))
            if latest >= 0:
                need[x] = latest
        return need

    def _record(self, q: Queue, acc: Access, index: int) -> None:
        if acc.space == DRAM:
            self._dram[(acc.write, q)].append((acc.start, acc.end, index))
        else:
            self._last[acc.space][int(acc.write), q.value, acc.start:acc.end] = index

    # ---- tokens ---------------------------------------------------------------------------
    def _place(self, q: Queue, instr: Instruction, need: dict[Queue, int]) -> int:
        need = {x: i for x, i in need.items() if x is not q}
        for x in [x for x in need if x not in _NEIGHBOURS[q]]:
            via = self._compute_knowing(x, need.pop(x))
            need[Queue.COMPUTE] = max(need.get(Queue.COMPUTE, -1), via)
        clock = list(self._known[q])
        pops: dict[Queue, int] = {}
        for x, i in sorted(need.items(), key=lambda kv: kv[0].value):
            if clock[x.value] >= i:
                continue
            site = self._push_site(x, q, i)
            pops[x] = site
            site_clock = self._end_clock(site)
            clock = [max(a, b) for a, b in zip(clock, site_clock)]
        index = len(self.items)
        item = _Item(queue=q, instr=instr, clock=tuple(clock))
        for x, site in pops.items():
            self._pushes[(x, q)].append(site)
            self._pops[(x, q)].append(index)
            self.items[site].flags[f"push_{_NEIGHBOURS[x][q]}"] = True
            item.flags[f"pop_{_NEIGHBOURS[q][x]}"] = True
        self.items.append(item)
        self._by_queue[q].append(index)
        self._known[q] = clock[:]
        self._known[q][q.value] = index
        return index

    def _end_clock(self, index: int) -> list[int]:
        item = self.items[index]
        clock = list(item.clock)
        clock[item.queue.value] = index
        return clock

    def _push_site(self, x: Queue, y: Queue, i: int) -> int:
        """An X instruction at or after `i` that may push the next X->Y token."""
        pushes, pops = self._pushes[(x, y)], self._pops[(x, y)]
        start = max(i, pushes[-1] + 1 if pushes else 0)
        n = len(pushes) + 1                     # the token this push will be
        depth = self.config.token_depth
        must_know = pops[n - depth - 1] if n > depth else -1
        indices = self._by_queue[x]
        for site in indices[bisect.bisect_left(indices, start):]:
            if self.items[site].clock[y.value] >= must_know:
                return site
        return self._dummy(x, {y: must_know})

    def _compute_knowing(self, x: Queue, i: int) -> int:
        """The earliest compute instruction that starts knowing X's instruction i completed."""
        indices = self._by_queue[Queue.COMPUTE]
        for site in indices[bisect.bisect_right(indices, i):]:
            if self.items[site].clock[x.value] >= i:
                return site
        return self._dummy(Queue.COMPUTE, {x: i})

    def _dummy(self, q: Queue, need: dict[Queue, int]) -> int:
        self.dummy_count[q.name] += 1
        return self._place(q, self._dummies[q], need)
