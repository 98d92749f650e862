"""cocotb scenarios for bus errors on the accelerator top level (hw/top.py): runs in the
simulator, launched by tests/cocotb/test_bus_error_cocotb.py through tests/cocotb/runner.py.

cocotbext-axi's AxiRam answers SLVERR for every beat whose memory access raises
(`AxiSlaveRead._process_read` / `AxiSlaveWrite._process_write` catch the exception of `_read`
/ `_write`); `answer_slverr` wraps those two methods of the bench's RAM so that one address
range fails. Each scenario starts a program whose LOAD data, instruction word or STORE target
lies in that range (tests/hw/test_top_bus_error.py's `fault_case`), checks through AXI-Lite
that the run ended (irq, STATUS DONE and ERROR) with ERROR_CODE BUS_ERROR at the faulting
instruction's index and that DRAM is unchanged (nothing after the error ran), then runs the
clean program on the same machine and compares DRAM with the functional model, with
ERROR_CODE NONE. Every scenario does this twice: plain, then with random backpressure and idle
cycles on every AXI channel (tb.py).

Scenarios (not named test_* so that pytest collects nothing here): `bus_error_load`,
`bus_error_fetch`, `bus_error_store`. Environment: SYSTOLICA_CONFIG (a preset name).
"""

from __future__ import annotations

import cocotb
import numpy as np

from hw.isa import ErrorCode
from sim.functional import FunctionalMachine
from tests.cocotb.tb import TB
from tests.cocotb.test_top_bench import STATUS_DONE, STATUS_ERROR, config, start
from tests.hw.test_top_bus_error import (A_CLEAN, A_FAULT, A_FAULTY, FaultCase, clean_program,
                                         dram_image, fault_case, place)

#: The DRAM window compared after each run: everything the cases place, read or write.
WINDOW = A_FAULT + 0x1000
#: Cycle bound for one run: the programs take under 2,000 cycles with 30% pauses.
RUN_CYCLES = 20_000


class SlaveError(Exception):
    """Raised by the wrapped RAM methods; cocotbext-axi turns it into SLVERR."""


def answer_slverr(tb: TB, span: tuple[int, int]) -> None:
    """Make `tb.ram` answer SLVERR to every read or write beat touching [start, end)."""
    first, end = span
    read, write = tb.ram.read_if._read, tb.ram.write_if._write

    def check(address: int, length: int) -> None:
        if address < end and first < address + length:
            raise SlaveError(f"0x{address:x} lies in the failing range")

    async def failing_read(address, length):
        check(address, length)
        return await read(address, length)

    async def failing_write(address, data):
        check(address, len(data))
        await write(address, data)

    tb.ram.read_if._read = failing_read
    tb.ram.write_if._write = failing_write


async def fault_then_clean(tb: TB, image: np.ndarray, case: FaultCase, expected: bytes) -> None:
    tb.write_mem(0, image[:WINDOW].tobytes())
    got = await tb.launch(A_FAULTY, len(case.program), RUN_CYCLES)
    assert got == (STATUS_ERROR, ErrorCode.BUS_ERROR.value, case.index), \
        f"expected BUS_ERROR at instruction {case.index}, read STATUS/ERROR_CODE/INDEX {got}"
    assert tb.read_mem(0, WINDOW) == image[:WINDOW].tobytes(), \
        "DRAM changed: the run went on after the bus error"
    tb.write_mem(0, image[:WINDOW].tobytes())
    got = await tb.launch(A_CLEAN, len(clean_program()), RUN_CYCLES)
    assert got == (STATUS_DONE, ErrorCode.NONE.value, 0), \
        f"the run after the bus error read STATUS/ERROR_CODE/INDEX {got}"
    assert tb.read_mem(0, WINDOW) == expected, "the clean run differs from the functional model"


async def scenario(dut, kind: str, seed: int) -> None:
    cfg = config()
    image = dram_image(cfg, seed=seed)
    case = fault_case(kind)
    place(image, case.program, A_FAULTY)
    machine = FunctionalMachine(cfg, image)
    machine.run(clean_program())
    expected = machine.dram[:WINDOW].tobytes()
    tb = await start(dut, seed=seed)
    answer_slverr(tb, case.fault)
    await fault_then_clean(tb, image, case, expected)
    tb.set_backpressure(True)
    tb.set_idle(True)
    await fault_then_clean(tb, image, case, expected)


@cocotb.test()
async def bus_error_load(dut):
    await scenario(dut, "load", seed=21)


@cocotb.test()
async def bus_error_fetch(dut):
    await scenario(dut, "fetch", seed=22)


@cocotb.test()
async def bus_error_store(dut):
    await scenario(dut, "store", seed=23)
