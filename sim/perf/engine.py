"""The event loop: instructions through the controller, the queues and the three units.

Each step executes the earliest action whose time is known: a fetch request, the read DMA
taking a descriptor (fetch first on a tie), the checker/dispatcher placing the next word, or a
queue's head entering its unit. A unit computes its instruction's done strobe when it takes
it (the compute and store units) or when the read DMA takes its descriptor (LOAD). Queue
rules (hw/controller/queues.py): the head is offered 2 cycles after dispatch, one per cycle,
when its pop tokens are there (a push in a done-strobe cycle is visible the next cycle), and
fewer than 4 instructions of that queue are accepted and unfinished.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.isa import INSTR_BYTES, Buffer, Opcode, Queue
from hw.program import Program
from sim.dram_model import DramTiming

from .compute import ComputeModel
from .dram import ReadChannel, WriteChannel, bursts_of
from .frontend import Frontend

__all__ = ["simulate", "Timeline", "queue_of_instr"]

IN_FLIGHT = 4
_LINKS = {(Queue.LOAD, "next"): (Queue.LOAD, Queue.COMPUTE),
          (Queue.COMPUTE, "prev"): (Queue.COMPUTE, Queue.LOAD),
          (Queue.COMPUTE, "next"): (Queue.COMPUTE, Queue.STORE),
          (Queue.STORE, "prev"): (Queue.STORE, Queue.COMPUTE)}


def queue_of_instr(instr) -> Queue | None:
    """The queue an instruction runs in (None for END)."""
    op = instr.OPCODE
    if op is Opcode.LOAD:
        return Queue.LOAD
    if op is Opcode.STORE:
        return Queue.STORE
    if op is Opcode.END:
        return None
    return Queue.COMPUTE


@dataclass
class Timeline:
    """Cycle numbers after the start pulse (cycle 0)."""
    cycles: int
    dispatch: list[int]
    start: list[int]          # the unit took the instruction
    done: list[int]           # the unit's done strobe (END: the finish cycle)
    array_busy: int = 0
    weight_load: int = 0
    late: int = 0             # actions the event order found after their cycle (0: exact order)
    load_wait: int = 0
    store_wait: int = 0
    dependency_wait: int = 0


def _token_waits(queues, d, a, D, deps, sides) -> dict[str, int]:
    """The controller's stall counters: a queue's head is present from
    max(dispatch + 2, previous take + 1) until its take, and waits while a token it pops is
    missing (until the matching push's done strobe + 1). load_wait / store_wait: the compute
    head waits for the LOAD / STORE token; dependency_wait: any head waits (union)."""
    out = {"load_wait": 0, "store_wait": 0}
    spans = []
    for q, lst in enumerate(queues):
        prev_take = None
        for k in lst:
            head = d[k] + 2 if prev_take is None else max(d[k] + 2, prev_take + 1)
            prev_take = a[k]
            until = head
            for j, side in zip(deps[k], sides[k]):
                ready = min(a[k], D[j] + 1)
                if q == 1 and ready > head:
                    out["load_wait" if side == "prev" else "store_wait"] += ready - head
                until = max(until, ready)
            if until > head:
                spans.append((head, until))
    spans.sort()
    total, end = 0, None
    for lo, hi in spans:
        if end is None or lo > end:
            total += hi - lo
            end = hi
        elif hi > end:
            total += hi - end
            end = hi
    out["dependency_wait"] = total
    return out


def _token_sources(instrs, queue_of) -> tuple[list[list[int]], list[list[str]]]:
    """For every instruction, the instructions whose pushes its pops consume and on which
    side ("prev"/"next") each pop is: the m-th pop
    from a token counter takes the m-th push into it (pops happen in program order, and the
    compiler's order is a valid sequential execution)."""
    pushers: dict[tuple, list[int]] = {link: [] for link in _LINKS.values()}
    pops: dict[tuple, int] = {link: 0 for link in _LINKS.values()}
    deps: list[list[int]] = [[] for _ in instrs]
    sides: list[list[str]] = [[] for _ in instrs]
    for k, ins in enumerate(instrs):
        q = queue_of[k]
        if q is None:
            continue
        for side in ("prev", "next"):
            link = _LINKS.get((q, side))
            if link is None:
                continue
            if getattr(ins, f"pop_{side}"):
                src = (link[1], link[0])      # the counter the neighbour pushes into
                m = pops[src]
                pops[src] += 1
                if m >= len(pushers[src]):
                    raise ValueError(f"instruction {k} pops a token that no earlier "
                                     "instruction pushes: the program would deadlock")
                deps[k].append(pushers[src][m])
                sides[k].append(side)
            if getattr(ins, f"push_{side}"):
                pushers[link].append(k)
    return deps, sides


def simulate(program: Program, timing: DramTiming) -> Timeline:
    """Run the event loop over `program` with the DRAM model's `timing`."""
    config = program.config
    instrs = program.instructions
    n = len(instrs)
    fe = Frontend(n)
    rch = ReadChannel(config, timing)
    wch = WriteChannel(config, timing)
    comp = ComputeModel(config)
    queue_of = [queue_of_instr(ins) for ins in instrs]
    deps, sides = _token_sources(instrs, queue_of)
    # queues by number (LOAD 0, COMPUTE 1, STORE 2; END -1): list indexing, no enum hashing
    queue_of = [-1 if q is None else q.value for q in queue_of]
    queues: list[list[int]] = [[], [], []]   # instruction indices per queue
    qpos = [0] * n                           # index within its queue
    for k, q in enumerate(queue_of):
        if q >= 0:
            qpos[k] = len(queues[q])
            queues[q].append(k)
    is_lut = [ins.OPCODE is Opcode.LOAD and ins.buffer is Buffer.LUT for ins in instrs]
    a = [None] * n          # taken by unit
    D = [None] * n          # done strobe
    head = [0, 0, 0]
    load_desc = []          # (valid cycle, k) LOAD descriptors not yet taken by the read DMA
    load_rdma = {}          # k -> cycle the read DMA took its descriptor
    load_last_take = -1
    store_ready = 0
    compute_done: list[int] = []
    compute_order: list[int] = []
    word_bytes = {Buffer.PBUF: config.pbuf_word_bytes}
    bus = config.axi_data_bytes
    fetch_beats = INSTR_BYTES // bus
    end_dispatch = None
    next_disp = 0

    next_enter = 0

    def dispatch_time(k):
        o = fe.o[k]
        if o is None:
            o = fe.output_time(k)
            if o is None:
                return None
            fe.o[k] = o
        q = queue_of[k]
        t = o
        if q >= 0:
            m = qpos[k] - config.queue_depth
            if m >= 0:
                j = queues[q][m]
                if a[j] is None:
                    return None
                t = max(t, a[j] + 1)
        return t

    def take_time(q):
        lst = queues[q]
        h = head[q]
        if h >= len(lst):
            return None
        k = lst[h]
        if fe.d[k] is None:
            return None
        t = fe.d[k] + 2
        if h:
            t = max(t, a[lst[h - 1]] + 1)
        if h >= IN_FLIGHT:
            dj = D[lst[h - IN_FLIGHT]]
            if dj is None:
                return None
            t = max(t, dj + 1)
        for j in deps[k]:
            dj = D[j]
            if dj is None:
                return None
            if dj >= t:
                t = dj + 1
        ins = instrs[k]
        if q == 0:
            t = max(t, load_last_take + 1)
            if h:
                prev = lst[h - 1]
                if prev not in load_rdma:
                    return None
                t = max(t, load_rdma[prev])
        elif q == 2:
            t = max(t, store_ready)
        else:
            t = comp.accept_time(ins, t, compute_done)
        return t

    INF = float("inf")
    MISSING = -1
    take_cache = [MISSING] * 3   # per queue: its head's take time (None: not yet known)
    now = late = 0
    while True:
        # derived front-end times, final as soon as the words ahead allow (before any event)
        progress = True
        while progress:
            progress = False
            if next_disp < n and fe.o[next_disp] is None:
                o = fe.output_time(next_disp)
                if o is not None:
                    fe.o[next_disp] = o
                    progress = True
            while next_enter < n:
                fk = fe.try_enter(next_enter)
                if fk is None:
                    break
                fe.f[next_enter] = fk
                next_enter += 1
                progress = True
        best, action = INF, None
        rt = fe.request_time()
        if rt is not None:
            best, action = rt, "fetch"
        # the read DMA takes a descriptor; a fetch request wins a tie with a LOAD's
        if fe.req_valid is not None:
            t = rch.free if rch.free > fe.req_valid else fe.req_valid
            if load_desc and max(rch.free, load_desc[0][0]) < t:
                t, kind = max(rch.free, load_desc[0][0]), "loaddesc"
            else:
                kind = "fetchdesc"
            if t < best:
                best, action = t, kind
        elif load_desc:
            t = max(rch.free, load_desc[0][0])
            if t < best:
                best, action = t, "loaddesc"
        if next_disp < n and end_dispatch is None:
            dt = dispatch_time(next_disp)
            if dt is not None and dt < best:
                best, action = dt, "dispatch"
        for q in (0, 1, 2):
            tt = take_cache[q]
            if tt == MISSING:
                tt = take_cache[q] = take_time(q)
            if tt is not None and tt < best:
                best, action = tt, q
        if action is None:
            break
        t = best
        if t < now:
            # an action found late (the fetch credit of a word whose checker entry was only
            # settled by a later dispatch): it happens now; never seen in the tests
            t = best = now
            late += 1
        now = t
        if action == "fetch":
            fe.issue_request(t)
        elif action == "fetchdesc":
            words = fe.req_words
            addr = program.program_address + fe.requested * INSTR_BYTES
            bursts = bursts_of(config, addr, words, 1, 0, 1, 0, INSTR_BYTES)
            fe.accepted(t, rch.run(t, bursts, fetch_beats, every_word=True, load=False))
        elif action == "loaddesc":
            _, k = load_desc.pop(0)
            ins = instrs[k]
            wb = word_bytes.get(ins.buffer, config.word_bytes)
            bursts = bursts_of(config, ins.dram_addr, ins.size0, ins.count1, ins.stride1,
                               ins.count2, ins.stride2, wb)
            if is_lut[k]:
                # the activation tables take a word every word_bytes + 1 cycles and hold
                # post-processing and the element-wise unit meanwhile
                words = rch.run(t, bursts, wb // bus, every_word=True,
                                word_gap=config.word_bytes + 1)
                for j, done in comp.lut_holds(words).items():
                    D[j] = done
                compute_done[:] = [D[j] for j in compute_order]
            else:
                words = rch.run(t, bursts, wb // bus)
            load_rdma[k] = t
            D[k] = words[-1] + 1
            take_cache = [MISSING] * 3
        elif action == "dispatch":
            k = next_disp
            fe.d[k] = t
            next_disp += 1
            if queue_of[k] < 0:
                end_dispatch = t
            else:
                take_cache[queue_of[k]] = MISSING
        else:
            q = action
            k = queues[q][head[q]]
            head[q] += 1
            a[k] = t
            ins = instrs[k]
            if q == 0:
                load_desc.append((t + 1, k))
                load_last_take = t
            elif q == 2:
                issue = max(t + 3, wch.free, wch.reader_free)
                bursts = bursts_of(config, ins.dram_addr, ins.size0, ins.count1, ins.stride1,
                                   ins.count2, ins.stride2, config.word_bytes)
                _, D[k] = wch.run(issue, bursts, config.word_bytes // bus)
                store_ready = issue + 1
            else:
                D[k] = comp.run(ins, t, k)
                compute_done.append(D[k])
                compute_order.append(k)
            take_cache = [MISSING] * 3
    if end_dispatch is None:
        raise RuntimeError("the model stopped before END was dispatched (a token is never "
                           "pushed: the program would deadlock)")
    finish = end_dispatch + 1
    for k in range(n):
        if queue_of[k] >= 0:
            if D[k] is None:
                raise RuntimeError(f"instruction {k} never ran: the program would deadlock")
            finish = max(finish, D[k] + 1)
    finish = max(finish, max(fe.w) + 1)
    waits = _token_waits(queues, fe.d, a, D, deps, sides)
    start = [x if x is not None else end_dispatch for x in a]
    done = [x if x is not None else finish for x in D]
    return Timeline(cycles=finish, dispatch=list(fe.d), start=start, done=done,
                    array_busy=comp.array_busy, weight_load=comp.weight_load, late=late,
                    **waits)
