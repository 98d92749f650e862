# amaranth: UnusedElaboratable=no
"""A SLVERR or DECERR on the top level's AXI4 master stops the run with BUS_ERROR and raises
done and the interrupt; the bursts already issued are completed, so the bus is idle when the
run ends; the next START on the same machine runs a program bit-exactly with ERROR_CODE NONE.

Each case runs under Amaranth's simulator on `tiny` with the shared DRAM model
(sim/dram_model.py) answering an error for one address range: the data of a LOAD, an
instruction word (fetch), or the target of a STORE. Every fault program would go on to STORE
into DRAM if it did not stop, so an unchanged DRAM shows that nothing after the error ran.
The program builders are shared with the cocotb bench (tests/cocotb/test_bus_error_bench.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.axi.csr import Reg
from hw.config import AcceleratorConfig, preset
from hw.isa import Add, Buffer, End, ErrorCode, Instruction, Load, Store, encode_program
from hw.top import Top
from sim.amaranth_dram import dram_process
from sim.axil_host import LiteMaster
from sim.dram_model import DECERR, SLVERR, AxiDramModel
from sim.functional import FunctionalMachine

TINY = preset("tiny")

#: DRAM map of the cases: two input vectors, the output, the clean program, the fault
#: programs, and the range the fault programs LOAD from or STORE to.
A_IN, A_B, A_OUT, A_CLEAN, A_FAULTY, A_FAULT = 0x0000, 0x0100, 0x2000, 0x1000, 0x1400, 0x8000
#: Words per vector: 16 words of 4 bytes are one 16-beat burst on `tiny`'s 32-bit bus.
WORDS = 16
#: The fetch case faults its third instruction word (index 2).
FETCH_FAULT_INDEX = 2
#: STATUS after a run: DONE, plus ERROR when the run stopped with an error code.
STATUS_DONE, STATUS_ERROR = 0b010, 0b110
#: Cycle bound for one run: each program here takes under 600 cycles with 20-cycle DRAM.
RUN_CYCLES = 5_000
FAULT_KINDS = ("load", "fetch", "store")


class FaultCase(NamedTuple):
    """A program that meets a bus error: where it lies, the faulting range, the expected
    ERROR_INDEX."""
    program: list[Instruction]
    fault: tuple[int, int]    #: [start, end) byte range answering the error
    index: int


def dram_image(config: AcceleratorConfig, seed: int) -> np.ndarray:
    """The full DRAM: random int8 vectors of WORDS words at A_IN, A_B and A_FAULT (so that a
    LOAD from A_FAULT that is not stopped leads to a visible STORE), the clean program at
    A_CLEAN."""
    rng = np.random.default_rng(seed)
    dram = np.zeros(config.dram_bytes, np.uint8)
    for address in (A_IN, A_B, A_FAULT):
        dram[address:address + WORDS * config.word_bytes] = rng.integers(
            0, 256, WORDS * config.word_bytes, dtype=np.uint8)
    code = np.frombuffer(encode_program(clean_program()), np.uint8)
    dram[A_CLEAN:A_CLEAN + len(code)] = code
    return dram


def _add(**fields) -> Add:
    return Add(a_addr=0, b_addr=WORDS, count=WORDS, obuf_addr=0, mult_a=11000, mult_b=-7000,
               shift=14, **fields)


def _load(address: int, buf_addr: int = 0, **fields) -> Load:
    return Load(buffer=Buffer.IBUF, buf_addr=buf_addr, dram_addr=address, size0=WORDS,
                count1=1, count2=1, **fields)


def _store(address: int, **fields) -> Store:
    return Store(buffer=Buffer.OBUF, dram_addr=address, size0=WORDS, count1=1, count2=1,
                 **fields)


def clean_program() -> list[Instruction]:
    """LOAD two vectors, ADD them (rescaled), STORE the sum at A_OUT."""
    return [_load(A_IN), _load(A_B, WORDS, push_next=True), _add(pop_prev=True, push_next=True),
            _store(A_OUT, pop_prev=True), End()]


def fault_case(kind: str) -> FaultCase:
    """The program (placed at A_FAULTY) whose `kind` transfer ("load", "fetch", "store")
    meets the error. Every instruction after the faulting one depends on it through a token,
    so none of them may run once the machine stops."""
    span = (A_FAULT, A_FAULT + 0x1000)
    if kind == "load":
        return FaultCase([_load(A_FAULT, push_next=True), _add(pop_prev=True, push_next=True),
                          _store(A_OUT, pop_prev=True), End()], span, 0)
    if kind == "fetch":
        word = A_FAULTY + 32 * FETCH_FAULT_INDEX
        return FaultCase(clean_program(), (word, word + 32), FETCH_FAULT_INDEX)
    if kind == "store":
        return FaultCase([_load(A_IN, push_next=True), _add(pop_prev=True, push_next=True),
                          _store(A_FAULT, pop_prev=True, push_prev=True),
                          _add(pop_next=True, push_next=True), _store(A_OUT, pop_prev=True),
                          End()], span, 2)
    raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")


def place(dram: np.ndarray, program: list[Instruction], address: int) -> None:
    code = np.frombuffer(encode_program(program), np.uint8)
    dram[address:address + len(code)] = code


class RunRecord(NamedTuple):
    status: int
    error: ErrorCode
    index: int
    bus_idle: bool        #: no burst left in the DRAM model and no VALID from the master
    dram: np.ndarray      #: the DRAM when the interrupt rose


def run_back_to_back(config: AcceleratorConfig, image: np.ndarray,
                     runs: list[tuple[int, int]], faults) -> list[RunRecord]:
    """Start the programs `runs` ((address, instructions) pairs) one after the other on one
    simulated machine, each on a fresh copy of `image`, with `faults` in the DRAM model."""
    top = Top(config=config)
    dram = image.copy()
    model = AxiDramModel(dram, bus_bytes=config.axi_data_bytes, faults=faults)
    records: list[RunRecord] = []

    async def host(ctx):
        lite = LiteMaster(top.s_axil)
        await lite.write(ctx, Reg.IRQ_ENABLE, 1)
        for address, length in runs:
            dram[:] = image
            await lite.write(ctx, Reg.PROG_ADDR, address)
            await lite.write(ctx, Reg.PROG_LEN, length)
            await lite.write(ctx, Reg.CTRL, 1)
            for _ in range(RUN_CYCLES):
                if ctx.get(top.irq):
                    break
                await ctx.tick()
            else:
                raise AssertionError(f"no interrupt within {RUN_CYCLES} cycles")
            master_idle = not (ctx.get(top.m_axi.arvalid) or ctx.get(top.m_axi.awvalid)
                               or ctx.get(top.m_axi.wvalid))
            model_idle = not (model.reads or model.writes or model.responses)
            snapshot = dram.copy()
            records.append(RunRecord(await lite.read_ok(ctx, Reg.STATUS),
                                     ErrorCode(await lite.read_ok(ctx, Reg.ERROR_CODE)),
                                     await lite.read_ok(ctx, Reg.ERROR_INDEX),
                                     master_idle and model_idle, snapshot))
            await lite.write(ctx, Reg.IRQ_STATUS, 1)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_process(dram_process(top.m_axi, model))
    sim.add_testbench(host)
    sim.run()
    return records


@pytest.mark.parametrize("kind, resp", [("load", SLVERR), ("fetch", DECERR), ("store", DECERR)])
def test_bus_error_stops_the_run_and_the_next_start_is_clean(kind, resp):
    image = dram_image(TINY, seed=7)
    case = fault_case(kind)
    place(image, case.program, A_FAULTY)
    want = FunctionalMachine(TINY, image)
    want.run(clean_program())
    faulty, clean = run_back_to_back(TINY, image, [(A_FAULTY, len(case.program)),
                                                   (A_CLEAN, len(clean_program()))],
                                     faults=[(*case.fault, resp)])
    assert (faulty.status, faulty.error, faulty.index) == (STATUS_ERROR, ErrorCode.BUS_ERROR,
                                                           case.index)
    assert faulty.bus_idle, "the run ended with a burst still open on the AXI master"
    changed = np.flatnonzero(faulty.dram != image)
    assert changed.size == 0, f"{kind}: the run went on after the error: DRAM changed at " \
                              f"0x{changed[0]:x}"
    assert (clean.status, clean.error, clean.index) == (STATUS_DONE, ErrorCode.NONE, 0)
    assert clean.bus_idle
    np.testing.assert_array_equal(clean.dram, want.dram)


def test_error_on_a_word_prefetched_after_end_is_not_reported():
    """PROG_LEN 4 with END at index 1: the fetcher reads words 0-3 in one request, and the
    failing word 3 is no part of the program (the functional model ends cleanly at END)."""
    image = dram_image(TINY, seed=8)
    place(image, [_load(A_IN), End()], A_FAULTY)
    (record,) = run_back_to_back(TINY, image, [(A_FAULTY, 4)],
                                 faults=[(A_FAULTY + 96, A_FAULTY + 128, SLVERR)])
    assert (record.status, record.error, record.index) == (STATUS_DONE, ErrorCode.NONE, 0)
    assert record.bus_idle


def test_fault_ranges_are_checked():
    with pytest.raises(ValueError, match="resp SLVERR"):
        AxiDramModel(np.zeros(64, np.uint8), bus_bytes=4, faults=[(0, 8, 1)])
