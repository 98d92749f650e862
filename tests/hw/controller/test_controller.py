"""The controller with a DRAM model and fake execution units (tests/hw/controller/harness.py):
program order per queue, token order, every error code with its index, agreement with
sim/functional.py on seeded random token programs, dispatcher throughput, restart, lint."""

from __future__ import annotations

import numpy as np
import pytest

from hw import isa
from hw.config import preset
from hw.controller.checker import CHECK_LATENCY
from hw.controller.controller import START_TO_FIRST_REQUEST, WORD_TO_UNIT, Controller
from hw.isa import ErrorCode, Queue
from hw.lint import lint_verilog, to_verilog

from .harness import FAST, PROGRAM_ADDRESS, Run, Timing, functional_verdict, run_controller, \
    run_many
from .test_checker import random_word

TINY = preset("tiny")


def load(**flags) -> isa.Instruction:
    return isa.Load(buffer=isa.Buffer.IBUF, size0=1, count1=1, count2=1, **flags)


def conv(**fields) -> isa.Instruction:
    base = dict(in_h=1, in_w=1, in_groups=1, kernel=1, stride=1, out_h=1, out_w=1,
                chunk_count=1, output=1)
    return isa.Conv(**{**base, **fields})


def store(**flags) -> isa.Instruction:
    return isa.Store(buffer=isa.Buffer.OBUF, size0=1, count1=1, count2=1, **flags)


def encode(program: list) -> list[int]:
    return [w if isinstance(w, int) else isa.encode(w) for w in program]


def check_order(program: list[int], result, *, complete: bool) -> None:
    """Each unit got its queue's instructions in program order (all of them up to END if
    complete)."""
    ends = [k for k, w in enumerate(program) if w & 0xF == isa.Opcode.END.value]
    program = program[:ends[0]] if ends else program
    for q in Queue:
        want = [w for w in program
                if (w & 0xF) < 6 and isa.queue_of(isa.Opcode(w & 0xF)) is q]
        got = result.started_words(q)
        assert got == (want if complete else want[:len(got)]), q
        assert [e.word for e in result.finished if e.queue is q] == got


def double_buffered(tiles: int) -> list[isa.Instruction]:
    """A compiler-like schedule: loads run two tiles ahead of compute, stores one behind."""
    program = []
    for t in range(tiles + 2):
        if t < tiles:
            program.append(load(pop_next=t >= 2, push_next=True))
        if 1 <= t <= tiles:
            program.append(conv(pop_prev=True, pop_next=t >= 3, push_prev=True, push_next=True))
        if 2 <= t:
            program.append(store(pop_prev=True, push_prev=True))
    return program + [isa.End()]


@pytest.mark.parametrize("seed", [0, 1])
def test_double_buffered_program(seed):
    words = encode(double_buffered(10))
    result = run_controller(TINY, words, seed=seed)
    assert (result.error, result.index) == (ErrorCode.NONE, 0) == functional_verdict(TINY, words)
    check_order(words, result, complete=True)
    assert sum(result.waits.values()) > 0   # tokens did hold units back


def random_token_program(rng, length: int) -> list[isa.Instruction]:
    """Random queues and token flags. A pop mostly takes a token some earlier instruction
    pushed (in program order); a few pop ahead of any push, which deadlocks unless a later
    push can still be dispatched (it depends on the queue depth)."""
    pushed = {link: 0 for link in ("lc", "cl", "cs", "sc")}

    def pop(link: str) -> bool:
        take = rng.random() < (0.5 if pushed[link] else 0.06)
        pushed[link] -= take
        return bool(take)

    def push(link: str) -> bool:
        give = rng.random() < 0.4
        pushed[link] += give
        return bool(give)

    program = []
    for _ in range(length):
        q = Queue(int(rng.integers(3)))
        if q is Queue.LOAD:
            program.append(load(pop_next=pop("cl"), push_next=push("lc")))
        elif q is Queue.STORE:
            program.append(store(pop_prev=pop("cs"), push_prev=push("sc")))
        else:
            program.append(conv(pop_prev=pop("lc"), pop_next=pop("sc"), push_prev=push("cl"),
                                push_next=push("cs")))
    return program + [isa.End()]


@pytest.mark.parametrize("queue_depth", [2, 8])
def test_random_token_programs_match_functional_model(queue_depth):
    # token_depth 255 > any counter's pushes: no overflow, so the outcome (clean END or
    # DEADLOCK at a program counter) is independent of timing and must equal the model's.
    config = TINY.replace(queue_depth=queue_depth, token_depth=255)
    rng = np.random.default_rng(queue_depth)
    outcomes = []
    for seed in range(12):
        words = encode(random_token_program(rng, int(rng.integers(5, 40))))
        result = run_controller(config, words, seed=seed)
        want = functional_verdict(config, words)
        assert (result.error, result.index) == want, seed
        check_order(words, result, complete=want[0] is ErrorCode.NONE)
        outcomes.append(want[0])
    assert 3 <= outcomes.count(ErrorCode.NONE) <= 9, outcomes


def test_random_words_random_timing_match_functional_model():
    """Token programs with random words mixed in (illegal ones of every kind, legal ones near
    the limits), random queue depths, memory and unit timing: same verdict as the model."""
    rng = np.random.default_rng(11)
    outcomes = set()
    for seed in range(16):
        config = TINY.replace(queue_depth=int(rng.choice([2, 4, 8])), token_depth=255)
        words = encode(random_token_program(rng, int(rng.integers(3, 40))))
        for k in range(len(words)):
            if rng.random() < 0.06:
                words[k] = random_word(rng, config)
        timing = Timing(latency=(1, int(rng.integers(1, 20))), word_gaps=rng.random() / 2,
                        req_stalls=rng.random() / 2, unit_stalls=rng.random() / 2,
                        exec_time=(1, int(rng.integers(1, 12))),
                        in_flight=tuple(int(x) for x in rng.integers(1, 5, 3)))
        want = functional_verdict(config, words)
        result = run_controller(config, words, timing=timing, seed=seed)
        assert (result.error, result.index) == want, seed
        check_order(words, result, complete=want[0] is ErrorCode.NONE)
        outcomes.add(want[0])
    assert len(outcomes) >= 4, outcomes


_BAD_OPCODE = isa.encode(isa.End()) | 9
_RESERVED = isa.encode(isa.End()) | 1 << 200


def _error_cases():
    c = TINY
    q2 = TINY.replace(queue_depth=2)
    ok = [load(push_next=True), conv(pop_prev=True)]
    return {
        "illegal_opcode": (c, ok + [_BAD_OPCODE, isa.End()], ErrorCode.ILLEGAL_OPCODE, 2),
        "reserved_bits": (c, ok + [_RESERVED], ErrorCode.ILLEGAL_FIELD, 2),
        "static_rule": (c, ok + [isa.encode(store()) & ~(0x7 << 8) | 1 << 8, isa.End()],
                        ErrorCode.ILLEGAL_FIELD, 2),
        "kernel_limit": (c, ok + [conv(kernel=c.max_kernel + 1), isa.End()],
                         ErrorCode.ILLEGAL_FIELD, 2),
        "token_flag": (c, ok + [load(pop_prev=True), isa.End()], ErrorCode.ILLEGAL_FIELD, 2),
        "buffer_range": (c, ok + [isa.Load(buffer=isa.Buffer.IBUF, buf_addr=c.ibuf_words - 1,
                                           size0=2, count1=1, count2=1), isa.End()],
                         ErrorCode.BUFFER_RANGE, 2),
        "dram_range": (c, ok + [store(), isa.Store(buffer=isa.Buffer.OBUF,
                                                   dram_addr=c.dram_bytes - c.word_bytes,
                                                   size0=2, count1=1, count2=1), isa.End()],
                       ErrorCode.DRAM_RANGE, 3),
        "past_length": (c, ok + [store()], ErrorCode.DRAM_RANGE, 3),
        "misaligned": (c, ok + [isa.Load(buffer=isa.Buffer.IBUF, stride1=c.word_bytes + 1,
                                         size0=1, count1=2, count2=1), isa.End()],
                       ErrorCode.MISALIGNED, 2),
        "token_overflow": (c, [load(push_next=True)] * (c.token_depth + 1) + [isa.End()],
                           ErrorCode.TOKEN_OVERFLOW, c.token_depth),
        "deadlock_at_end": (c, ok + [conv(pop_prev=True), isa.End()], ErrorCode.DEADLOCK, 3),
        "deadlock_queue_full": (q2, [conv(pop_prev=True), conv(), conv(), load(push_next=True),
                                     isa.End()], ErrorCode.DEADLOCK, 2),
        # A `check` error behind a full queue is never reached: the run deadlocks first ...
        "late_error_behind_full_queue": (q2, [conv(pop_prev=True), conv(),
                                              conv(kernel=c.max_kernel + 1), isa.End()],
                                         ErrorCode.DEADLOCK, 2),
        # ... but a word that does not decode stops the run when the dispatcher reaches it.
        "early_error_behind_full_queue": (q2, [conv(pop_prev=True), conv(), _RESERVED],
                                          ErrorCode.ILLEGAL_FIELD, 2),
        "error_after_end": (c, ok + [isa.End(), _BAD_OPCODE], ErrorCode.NONE, 0),
    }


@pytest.mark.parametrize("case", list(_error_cases()))
def test_error_codes(case):
    config, program, code, index = _error_cases()[case]
    words = encode(program)
    assert functional_verdict(config, words) == (code, index)
    result = run_controller(config, words, seed=len(case))
    assert (result.error, result.index) == (code, index)
    check_order(words, result, complete=code is ErrorCode.NONE)
    # Nothing at or after the failing instruction started.
    assert len(result.started) <= index or code is ErrorCode.NONE \
        or code is ErrorCode.TOKEN_OVERFLOW


def test_fetch_faults_without_functional_counterpart():
    words = encode([load(), load(), load()])
    # The program's third word would lie beyond the end of DRAM.
    top = TINY.dram_bytes - 2 * isa.INSTR_BYTES
    result = run_controller(TINY, words, address=top)
    assert (result.error, result.index) == (ErrorCode.DRAM_RANGE, 2)
    assert all(a + n * isa.INSTR_BYTES <= TINY.dram_bytes for _, a, n in result.requests)
    result = run_controller(TINY, words, address=PROGRAM_ADDRESS + 4)
    assert (result.error, result.index, result.requests) == (ErrorCode.MISALIGNED, 0, [])
    result = run_controller(TINY, words, length=0)
    assert (result.error, result.index, result.requests) == (ErrorCode.DRAM_RANGE, 0, [])


def test_dispatch_throughput_exact_cycles():
    """With a 2-cycle memory and single-cycle units that are always ready, the controller
    delivers one instruction per cycle: instruction k reaches its unit in cycle
    START_TO_FIRST_REQUEST + 2 + WORD_TO_UNIT + k, and a run of N instructions + END takes
    N + 13 busy cycles (the last finishes one cycle after it starts, `busy` falls the cycle
    after that)."""
    n = 240
    program = [[load(), conv(), store()][k % 3] for k in range(n)] + [isa.End()]
    result = run_controller(TINY, encode(program), timing=FAST)
    first = START_TO_FIRST_REQUEST + 2 + WORD_TO_UNIT
    assert WORD_TO_UNIT == 2 + CHECK_LATENCY + 2
    assert [e.cycle for e in result.started] == list(range(first, first + n))
    assert result.cycles == result.wall_cycles == first + n + 1 == n + 13
    assert result.error is ErrorCode.NONE and result.waits == {q: 0 for q in Queue}


def test_restart_after_error_and_after_end():
    """Runs back to back on one controller: an error with fetches still in flight (the run
    ends only once they have arrived: the harness checks), a clean run, a deadlock."""
    early = encode([_BAD_OPCODE] + [load()] * 40)
    good = encode(double_buffered(4))
    stuck = encode([load(push_next=True), conv(pop_prev=True), conv(pop_prev=True), isa.End()])
    slow = Timing(latency=(20, 30))
    results = run_many(TINY, [Run(early), Run(good, address=0x8000),
                              Run(stuck, address=0x10000)], timing=slow, seed=3)
    assert [(r.error, r.index) for r in results] == [
        (ErrorCode.ILLEGAL_OPCODE, 0), (ErrorCode.NONE, 0), (ErrorCode.DEADLOCK, 3)]
    assert results[0].started == []
    check_order(good, results[1], complete=True)


def test_fetch_stops_at_end_and_prefetches_ahead():
    """Words past END are not requested once END has arrived; before that, at most
    prefetch_words (16) are requested ahead of the dispatcher."""
    program = encode([load()] * 30 + [isa.End()] + [load()] * 200)
    result = run_controller(TINY, program, timing=Timing(latency=(5, 15)), seed=9)
    requested = sum(n for _, _, n in result.requests)
    assert result.error is ErrorCode.NONE
    assert 31 <= requested <= 31 + 16
    addresses = [a for _, a, _ in result.requests]
    assert addresses == sorted(addresses) and addresses[0] == PROGRAM_ADDRESS


def test_units_with_deep_preload():
    """Units that hold up to 4 accepted instructions (the in-flight limit) still see every
    token respected."""
    words = encode(double_buffered(8))
    timing = Timing(in_flight=(4, 4, 4), exec_time=(2, 9))
    result = run_controller(TINY, words, timing=timing, seed=5)
    assert result.error is ErrorCode.NONE
    check_order(words, result, complete=True)


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_controller_lint(name):
    lint_verilog(to_verilog(Controller(config=preset(name)), "controller"), "controller")
