"""Test environment for the controller: a DRAM model serving fetch requests and three fake
execution units, all in one cycle-by-cycle testbench, plus the functional model's verdict.

Every knob is seeded: memory latency per request, idle cycles between returned words,
request backpressure, unit acceptance stalls, execution times and how many instructions a
unit may hold accepted-but-unfinished (the compute unit preloads weights).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from hw import isa
from hw.config import AcceleratorConfig
from hw.controller.controller import Controller
from hw.isa import ErrorCode, Queue
from sim.functional import FunctionalMachine, MachineError
from tests.streams import run_sim

__all__ = ["Timing", "FAST", "Event", "RunResult", "Run", "run_controller", "run_many",
           "functional_verdict", "PROGRAM_ADDRESS"]

PROGRAM_ADDRESS = 0x1000

# (queue, side) -> (queue, side) of the counter it pops: mirrors sim/functional.py's pairs.
_POPS_FROM = {(Queue.LOAD, "next"): (Queue.COMPUTE, "prev"),
              (Queue.COMPUTE, "prev"): (Queue.LOAD, "next"),
              (Queue.COMPUTE, "next"): (Queue.STORE, "prev"),
              (Queue.STORE, "prev"): (Queue.COMPUTE, "next")}


@dataclass(frozen=True)
class Timing:
    latency: tuple[int, int] = (1, 8)     #: memory round trip per request, cycles (lo, hi)
    word_gaps: float = 0.2                #: probability of an idle cycle between words
    req_stalls: float = 0.2               #: probability that fetch_req.ready is low
    unit_stalls: float = 0.3              #: probability that a unit's ready is low
    exec_time: tuple[int, int] = (1, 6)   #: cycles from acceptance to done (lo, hi)
    in_flight: tuple[int, int, int] = (2, 2, 1)   #: accepted, unfinished per unit


FAST = Timing(latency=(2, 2), word_gaps=0.0, req_stalls=0.0, unit_stalls=0.0,
              exec_time=(1, 1), in_flight=(1, 1, 1))


@dataclass(frozen=True)
class Event:
    cycle: int
    queue: Queue
    word: int


@dataclass
class RunResult:
    error: ErrorCode
    index: int
    cycles: int               #: the controller's cycle counter
    wall_cycles: int          #: cycles from the start pulse to `done`
    waits: dict[Queue, int]
    started: list[Event] = field(default_factory=list)
    finished: list[Event] = field(default_factory=list)
    requests: list[tuple[int, int, int]] = field(default_factory=list)  #: (cycle, addr, words)

    def started_words(self, queue: Queue) -> list[int]:
        return [e.word for e in self.started if e.queue is queue]


@dataclass(frozen=True)
class Run:
    """One program run: the words at `address`, started with `length` (default: all)."""
    words: list[int]
    address: int = PROGRAM_ADDRESS
    length: int | None = None


def run_controller(config: AcceleratorConfig, words: list[int], *, length: int | None = None,
                   address: int = PROGRAM_ADDRESS, timing: Timing = Timing(), seed: int = 0,
                   **kwargs) -> RunResult:
    """Run one program (a list of 256-bit words placed at `address`) to `done`."""
    return run_many(config, [Run(words, address, length)], timing=timing, seed=seed,
                    **kwargs)[0]


def run_many(config: AcceleratorConfig, runs: list[Run], *, timing: Timing = Timing(),
             seed: int = 0, max_cycles: int = 20000, **controller_args) -> list[RunResult]:
    """Run the programs one after the other on one controller, each to `done`, checking on
    the way that every instruction starts only with its pop tokens available."""
    dut = Controller(config=config, **controller_args)
    rng = np.random.default_rng(seed)
    memory = {}
    for run in runs:
        memory.update({run.address + isa.INSTR_BYTES * k: w for k, w in enumerate(run.words)})
    units = {Queue.LOAD: (dut.load, dut.load_done), Queue.COMPUTE: (dut.compute, dut.compute_done),
             Queue.STORE: (dut.store, dut.store_done)}
    results: list[RunResult] = []

    async def environment(ctx):
        for run in runs:
            results.append(await one_run(ctx, run))

    async def one_run(ctx, run: Run) -> RunResult:
        ctx.set(dut.program_address, run.address)
        ctx.set(dut.program_length, len(run.words) if run.length is None else run.length)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        tokens = {key: 0 for key in _POPS_FROM.values()}
        in_flight = {q: deque() for q in Queue}
        returning: deque = deque()      # (earliest cycle, word) in request order
        started, finished, requests = [], [], []
        cycle = 1
        while not ctx.get(dut.done):
            assert cycle < max_cycles, "the controller did not finish"
            req_ready = rng.random() >= timing.req_stalls
            ctx.set(dut.fetch_req.ready, req_ready)
            deliver = bool(returning) and returning[0][0] <= cycle \
                and rng.random() >= timing.word_gaps
            ctx.set(dut.fetch_words.valid, deliver)
            if deliver:
                ctx.set(dut.fetch_words.payload, returning[0][1])
            accept, done = {}, {}
            for k, (q, (port, done_port)) in enumerate(units.items()):
                done[q] = bool(in_flight[q]) and in_flight[q][0][1] <= cycle
                ctx.set(done_port, done[q])
                accept[q] = len(in_flight[q]) < timing.in_flight[k] \
                    and rng.random() >= timing.unit_stalls
                ctx.set(port.ready, accept[q])

            if req_ready and ctx.get(dut.fetch_req.valid):
                req = ctx.get(dut.fetch_req.payload)
                assert req.address % isa.INSTR_BYTES == 0 and 1 <= req.words <= 256
                assert req.address + isa.INSTR_BYTES * req.words <= config.dram_bytes
                requests.append((cycle, req.address, req.words))
                due = cycle + int(rng.integers(timing.latency[0], timing.latency[1] + 1))
                for k in range(req.words):
                    returning.append((due + k, memory.get(req.address + isa.INSTR_BYTES * k, 0)))
            if deliver:
                assert ctx.get(dut.fetch_words.ready)
                returning.popleft()
            if ctx.get(dut.error) != ErrorCode.NONE:
                # from the cycle the error shows, nothing more is offered or dispatched
                assert not any(ctx.get(port.valid) for port, _ in units.values()), \
                    "an instruction offered after the run stopped on an error"
            if ctx.get(dut.finish):  # the CSR samples both in this cycle
                at_finish = (ctx.get(dut.error), ctx.get(dut.error_index))
            for q, (port, _) in units.items():
                if accept[q] and ctx.get(port.valid):
                    word = ctx.get(port.payload)
                    header = isa.decode(word)
                    for side in ("prev", "next"):
                        if getattr(header, f"pop_{side}"):
                            key = _POPS_FROM[(q, side)]
                            assert tokens[key] > 0, f"{q.name} started {header} without a token"
                            tokens[key] -= 1
                    run_for = int(rng.integers(timing.exec_time[0], timing.exec_time[1] + 1))
                    in_flight[q].append((header, cycle + run_for, word))
                    started.append(Event(cycle, q, word))
            for q in Queue:
                if done[q]:
                    header, _, word = in_flight[q].popleft()
                    finished.append(Event(cycle, q, word))
                    for side in ("prev", "next"):
                        if getattr(header, f"push_{side}"):
                            tokens[(q, side)] += 1
            await ctx.tick()
            cycle += 1
        for q, (_, done_port) in units.items():
            ctx.set(done_port, 0)
        assert not any(in_flight.values()), "done while a unit still runs"
        assert not returning and not ctx.get(dut.busy), "done with fetches outstanding"
        assert at_finish == (ctx.get(dut.error), ctx.get(dut.error_index))
        return RunResult(
            error=ctx.get(dut.error), index=ctx.get(dut.error_index),
            cycles=ctx.get(dut.cycles), wall_cycles=cycle - 1,
            waits={q: ctx.get(getattr(dut, f"wait_{q.name.lower()}")) for q in Queue},
            started=started, finished=finished, requests=requests)

    run_sim(dut, environment)
    return results


def functional_verdict(config: AcceleratorConfig, words: list[int]) -> tuple[ErrorCode, int]:
    """(error code, index) sim/functional.py reports for these words ((NONE, 0) for a clean
    END). A word that does not decode raises its decode error when the dispatcher reaches it:
    the program is cut before it, and the functional model's running past the end of the cut
    program at that index stands for reaching it."""
    records, bad = [], None
    for index, word in enumerate(words):
        try:
            records.append(isa.decode(word))
        except isa.IllegalInstruction as exc:
            bad = (exc.code, index)
            break
    machine = FunctionalMachine(config)
    try:
        machine.run(records, check_races=False)
    except MachineError as exc:
        if bad and exc.code is ErrorCode.DRAM_RANGE and exc.index == bad[1]:
            return bad
        return exc.code, exc.index
    return ErrorCode.NONE, 0
