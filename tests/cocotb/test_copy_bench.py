"""cocotb scenarios for the test-only copy DUT (tests/cocotb/dut_copy.py): runs in the
simulator, launched by tests/cocotb/test_cocotb_runner.py through tests/cocotb/runner.py.

Scenarios: plain, backpressure on every channel, idle cycles on every channel, bad commands
(error codes, then a clean restart), and 4 KiB page crossings (bursts checked). Each writes
random source data, a guard pattern over the destinations and the copy commands into the
AxiRam DRAM model, starts the DUT through AXI-Lite exactly as software starts the accelerator
(PROG_ADDR, PROG_LEN, IRQ_ENABLE, CTRL.START), waits for `irq`, checks STATUS and ERROR_CODE,
clears the interrupt, and compares the whole touched DRAM window with a Python model of the
copies byte for byte (rows copied, gaps and guards untouched).

The config comes from the SYSTOLICA_CONFIG environment variable (a preset name). Scenario
functions are not named test_* so that pytest, which also imports this file, collects nothing.
"""

import os
import time
from typing import NamedTuple

import cocotb
import numpy as np

from hw.axi.csr import Reg
from hw.config import preset
from hw.isa import ErrorCode
from tests.cocotb.dut_copy import COMMAND_BYTES
from tests.cocotb.tb import TB

#: Where the command list lives; data areas start at DATA_BASE.
PROGRAM_ADDR = 0x100
DATA_BASE = 0x10000
PAGE = 4096


class Copy(NamedTuple):
    """One copy command (dut_copy.CopyCommand), in bytes."""
    src: int
    dst: int
    row_bytes: int
    rows: int
    src_stride: int
    dst_stride: int

    def encode(self) -> bytes:
        words = [self.src, self.dst, self.row_bytes, self.rows, self.src_stride,
                 self.dst_stride, 0, 0]
        return b"".join(word.to_bytes(4, "little") for word in words)

    def spans(self):
        """(src, dst) byte ranges of each row."""
        for row in range(self.rows):
            src = self.src + row * self.src_stride
            dst = self.dst + row * self.dst_stride
            yield range(src, src + self.row_bytes), range(dst, dst + self.row_bytes)


def config():
    return preset(os.environ["SYSTOLICA_CONFIG"])


def mixed_copies(beat: int) -> list[Copy]:
    """A 1-D copy whose length is no multiple of the burst length, a 2-D copy with different
    source and destination strides (the gaps must stay untouched), and a single-beat copy."""
    return [
        Copy(DATA_BASE, DATA_BASE + 0x4000, 53 * beat, 1, 0, 0),
        Copy(DATA_BASE + 0x1000, DATA_BASE + 0x5000, 19 * beat, 5, 24 * beat, 21 * beat),
        Copy(DATA_BASE + 0x3000, DATA_BASE + 0x7000 + 3 * beat, beat, 1, 0, 0),
    ]


def page_crossing_copies(beat: int) -> list[Copy]:
    """Rows that start a few beats before a 4 KiB page and run 40 beats past it, at source
    and destination offsets that differ, so read and write bursts split at different beats."""
    return [
        Copy(DATA_BASE + 3 * PAGE - 5 * beat, DATA_BASE + 8 * PAGE - 11 * beat, 45 * beat, 3,
             PAGE, PAGE + 2 * beat),
    ]


async def run_program(tb: TB, copies: list[Copy]) -> tuple[int, int, int]:
    """Write `copies` as the program, start it as software starts the accelerator, wait for
    `irq`, clear it; return STATUS, ERROR_CODE and ERROR_INDEX."""
    tb.write_mem(PROGRAM_ADDR, b"".join(copy.encode() for copy in copies))
    beats = sum(copy.rows * copy.row_bytes for copy in copies) // config().axi_data_bytes
    return await tb.launch(PROGRAM_ADDR, len(copies), timeout_cycles=50 * beats + 2000)


async def run_copies(tb: TB, copies: list[Copy], *, seed: int) -> int:
    """Run `copies` as one program; check the status and DRAM; return the CYCLES counter."""
    rng = np.random.default_rng(seed)
    lo = min(min(s.start, d.start) for copy in copies for s, d in copy.spans())
    hi = max(max(s.stop, d.stop) for copy in copies for s, d in copy.spans())
    # Guard pattern everywhere, then fresh random data in every source row.
    model = bytearray(rng.integers(0, 256, hi - lo, dtype=np.uint8).tobytes())
    for copy in copies:
        for src, _ in copy.spans():
            model[src.start - lo:src.stop - lo] = rng.integers(0, 256, len(src),
                                                               dtype=np.uint8).tobytes()
    tb.write_mem(lo, model)
    for copy in copies:
        for src, dst in copy.spans():
            model[dst.start - lo:dst.stop - lo] = model[src.start - lo:src.stop - lo]

    status, error, _ = await run_program(tb, copies)
    assert (status, error) == (0b010, ErrorCode.NONE.value), \
        f"STATUS {status:#05b}, ERROR_CODE {error}"
    cycles = await tb.read_reg(Reg.COUNTERS) | await tb.read_reg(Reg.COUNTERS + 4) << 32
    got = tb.read_mem(lo, hi - lo)
    if got != bytes(model):
        bad = next(n for n in range(hi - lo) if got[n] != model[n])
        raise AssertionError(f"DRAM differs from the model first at 0x{lo + bad:x}: "
                             f"got {got[bad]:#04x}, expected {model[bad]:#04x}")
    beats = sum(copy.rows * copy.row_bytes for copy in copies) // config().axi_data_bytes
    tb.log.info("%d copies, %d beats: %d cycles busy", len(copies), beats, cycles)
    return cycles


async def start(dut, *, seed: int) -> TB:
    tb = TB(dut, seed=seed)
    assert len(dut.m_axi_wdata) == config().axi_data_bits, "DUT built for another config"
    await tb.reset()
    return tb


def check_streaming(copies: list[Copy], cycles: int) -> None:
    """Without traffic shaping the DMA engines move one beat per cycle (read_dma.py's
    throughput), so a run costs its beats plus a fixed overhead per command: the command
    fetch (32 bytes) and ~16 cycles of AxiRam latency, decode and write response (measured:
    16,400 cycles for one 16,384-beat command on both simulators). This is a bound, not a
    cycle model: AxiRam's own latency belongs to cocotbext-axi."""
    beat = config().axi_data_bytes
    beats = sum(copy.rows * copy.row_bytes for copy in copies) // beat
    overhead = COMMAND_BYTES // beat + 24
    assert beats <= cycles <= beats + overhead * len(copies), \
        f"{cycles} cycles for {beats} beats in {len(copies)} commands"


@cocotb.test()
async def copy_plain(dut):
    tb = await start(dut, seed=1)
    copies = mixed_copies(config().axi_data_bytes)
    check_streaming(copies, await run_copies(tb, copies, seed=1))


@cocotb.test()
async def copy_backpressure(dut):
    tb = await start(dut, seed=2)
    tb.set_backpressure(True)
    await run_copies(tb, mixed_copies(config().axi_data_bytes), seed=2)


@cocotb.test()
async def copy_idle(dut):
    tb = await start(dut, seed=3)
    tb.set_idle(True)
    await run_copies(tb, mixed_copies(config().axi_data_bytes), seed=3)


@cocotb.test()
async def copy_rejects_bad_commands(dut):
    """Bad commands end the run with DONE, ERROR, the error code and the command's index,
    after the good commands before them; the machine then starts again normally."""
    tb = await start(dut, seed=5)
    beat = config().axi_data_bytes
    good = Copy(DATA_BASE, DATA_BASE + 0x1000, 4 * beat, 2, 8 * beat, 8 * beat)
    for program, error, index in [
            ([good, good._replace(rows=0)], ErrorCode.ILLEGAL_FIELD, 1),
            ([good._replace(row_bytes=beat + 1)], ErrorCode.ILLEGAL_FIELD, 0),
            ([good, good, good._replace(src=DATA_BASE + beat // 2)], ErrorCode.MISALIGNED, 2),
            ([good._replace(dst_stride=beat - 1)], ErrorCode.MISALIGNED, 0)]:
        assert await run_program(tb, program) == (0b110, error.value, index)
    await run_copies(tb, [good], seed=5)


@cocotb.test()
async def copy_page_crossing(dut):
    """4 KiB crossing under backpressure and idle cycles together; every burst must stay
    inside its page, be at most max_burst_beats long, and the bursts must tile the rows."""
    cfg = config()
    tb = await start(dut, seed=4)
    tb.monitor_bursts()
    tb.set_backpressure(True)
    tb.set_idle(True)
    copies = page_crossing_copies(cfg.axi_data_bytes)
    await run_copies(tb, copies, seed=4)
    bursts = tb.bursts()
    for burst in bursts:
        assert burst.addr // PAGE == (burst.end - 1) // PAGE, f"{burst} crosses 4 KiB"
        assert burst.beats <= cfg.max_burst_beats, f"{burst} is longer than max_burst_beats"
        assert burst.size == cfg.axi_data_bytes, f"{burst} is not full width"
    for kind, side in (("read", 0), ("write", 1)):
        covered = merged((b.addr, b.end) for b in bursts if b.kind == kind and b.addr >= DATA_BASE)
        rows = sorted((spans[side].start, spans[side].stop)
                      for copy in copies for spans in copy.spans())
        assert covered == rows, f"{kind} bursts cover {covered}, not the rows {rows}"
    fetches = [(b.addr, b.beats * b.size) for b in bursts if b.kind == "read"
               and b.addr < DATA_BASE]
    assert fetches == [(PROGRAM_ADDR + n * COMMAND_BYTES, COMMAND_BYTES)
                       for n in range(len(copies))]


def merged(ranges) -> list[tuple[int, int]]:
    """Sorted (start, end) byte ranges with touching neighbours joined."""
    out: list[tuple[int, int]] = []
    for start_addr, end in sorted(ranges):
        if out and out[-1][1] == start_addr:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start_addr, end))
    return out


@cocotb.test(skip=os.environ.get("SYSTOLICA_EXPECT_FAILURE") != "1")
async def expected_failure(dut):
    """Fails on purpose, and runs only when SYSTOLICA_EXPECT_FAILURE=1: proves that a failing
    scenario fails the pytest test that launched it (test_cocotb_runner.py)."""
    tb = await start(dut, seed=7)
    assert await tb.read_reg(Reg.ID) == 0, "expected_failure: the ID register is not 0"


@cocotb.test(skip=os.environ.get("SYSTOLICA_BENCH_LONG") != "1")
async def copy_long(dut):
    """A 16,384-beat 2-D copy without traffic shaping, for simulation-speed measurements
    (runs only when SYSTOLICA_BENCH_LONG=1: test_cocotb_runner.py's slow test)."""
    tb = await start(dut, seed=6)
    beat = config().axi_data_bytes
    copies = [Copy(DATA_BASE, DATA_BASE + (1 << 20), 256 * beat, 64, 256 * beat, 256 * beat)]
    # CPU time of the simulator process: unlike wall time, it holds on a shared machine.
    cpu, first = time.process_time(), tb.cycle
    check_streaming(copies, await run_copies(tb, copies, seed=6))
    tb.log.info("%.0f cycles per CPU second", (tb.cycle - first) / (time.process_time() - cpu))
