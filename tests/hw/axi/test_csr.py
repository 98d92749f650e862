"""CSR register file over AXI4-Lite: read/write with strobes, W1C interrupt status, the
start/done protocol with exact counter values, and its timing."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.axi.csr import COUNTERS, CSR, ID_VALUE, Reg
from hw.axi.signatures import AXIResp
from hw.config import preset
from hw.isa import ErrorCode
from hw.lint import lint_verilog, to_verilog
from sim.axil_host import LiteMaster


def simulate(*testbenches):
    config = preset("tiny")
    dut = CSR(config=config)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for tb in testbenches:
        sim.add_testbench(tb(dut))
    sim.run()
    return config


@pytest.mark.parametrize("gaps", [0.0, 0.4])
def test_register_read_write(gaps):
    def bench(dut):
        async def tb(ctx):
            master = LiteMaster(dut.bus, gaps=gaps, seed=3)
            assert await master.read_ok(ctx, Reg.ID) == ID_VALUE
            assert await master.read_ok(ctx, Reg.CONFIG_ID) == \
                int(preset("tiny").fingerprint[:8], 16)
            assert await master.write(ctx, Reg.PROG_ADDR, 0x12345678) == AXIResp.OKAY
            assert await master.write(ctx, Reg.PROG_ADDR, 0xAABBCCDD, strobe=0b0101) == \
                AXIResp.OKAY
            assert await master.read_ok(ctx, Reg.PROG_ADDR) == 0x12BB56DD
            assert ctx.get(dut.prog_addr) == 0x12BB56DD
            await master.write(ctx, Reg.PROG_LEN, 77)
            assert await master.read_ok(ctx, Reg.PROG_LEN) == 77
            assert ctx.get(dut.prog_len) == 77
            await master.write(ctx, Reg.IRQ_ENABLE, 0xFFFFFFFF)
            assert await master.read_ok(ctx, Reg.IRQ_ENABLE) == 1
            assert await master.read_ok(ctx, 0x30) == 0          # unmapped
            assert await master.write(ctx, 0x30, 5) == AXIResp.OKAY
            assert await master.read(ctx, Reg.PROG_LEN + 2) == (0, AXIResp.SLVERR)
            assert await master.write(ctx, Reg.PROG_LEN + 1, 5) == AXIResp.SLVERR
            assert await master.read_ok(ctx, Reg.PROG_LEN) == 77
            status = await master.read_ok(ctx, Reg.STATUS)
            assert status == 0 and not ctx.get(dut.busy) and not ctx.get(dut.irq)
        return tb
    simulate(bench)


def test_start_done_counters_and_interrupt():
    run_cycles = 57
    log = {"starts": 0, "events": np.zeros(len(COUNTERS) - 1, np.int64), "busy": 0}

    def core(dut):
        async def tb(ctx):
            rng = np.random.default_rng(9)
            for run in range(2):
                prog_addr, prog_len = await ctx.tick().sample(
                    dut.prog_addr, dut.prog_len).until(dut.start)
                log["starts"] += 1
                assert (prog_addr, prog_len) == (0x1000 * (run + 1), 40 + run)
                log["events"][:] = 0
                log["busy"] = 0
                for n in range(run_cycles):
                    bits = rng.integers(0, 2, len(COUNTERS) - 1)
                    ctx.set(dut.events, dict(zip(COUNTERS[1:], map(int, bits))))
                    last = n == run_cycles - 1
                    if last:
                        ctx.set(dut.done, 1)
                        ctx.set(dut.error, ErrorCode.DRAM_RANGE if run else ErrorCode.NONE)
                        ctx.set(dut.error_index, 12 if run else 39)
                    _, _, busy = await ctx.tick().sample(dut.busy)
                    assert busy
                    log["busy"] += 1
                    log["events"] += bits
                ctx.set(dut.done, 0)
                ctx.set(dut.events, {})
                assert not ctx.get(dut.busy)
        return tb

    def host(dut):
        async def tb(ctx):
            master = LiteMaster(dut.bus, gaps=0.2, seed=4)
            for run in range(2):
                await master.write(ctx, Reg.PROG_ADDR, 0x1000 * (run + 1))
                await master.write(ctx, Reg.PROG_LEN, 40 + run)
                await master.write(ctx, Reg.IRQ_ENABLE, 1)
                await master.write(ctx, Reg.CTRL, 1)
                assert await master.read_ok(ctx, Reg.STATUS) & 0b11 == 0b01
                await master.write(ctx, Reg.CTRL, 1)   # ignored while busy
                await ctx.tick().until(dut.irq)
                assert await master.read_ok(ctx, Reg.STATUS) == (0b110 if run else 0b010)
                assert await master.read_ok(ctx, Reg.ERROR_CODE) == \
                    (ErrorCode.DRAM_RANGE.value if run else 0)
                assert await master.read_ok(ctx, Reg.ERROR_INDEX) == (12 if run else 39)
                values = []
                for n in range(len(COUNTERS)):
                    low = await master.read_ok(ctx, Reg.COUNTERS + 8 * n)
                    high = await master.read_ok(ctx, Reg.COUNTERS + 8 * n + 4)
                    values.append(low | high << 32)
                assert values == [log["busy"], *map(int, log["events"])]
                assert values[0] == run_cycles
                assert await master.read_ok(ctx, Reg.IRQ_STATUS) == 1
                await master.write(ctx, Reg.IRQ_STATUS, 1)
                assert await master.read_ok(ctx, Reg.IRQ_STATUS) == 0
                assert not ctx.get(dut.irq)
            assert log["starts"] == 2
        return tb

    simulate(core, host)


def test_start_pulse_timing():
    """AWVALID and WVALID from cycle t: the handshake in cycle t+1, the `start` pulse (a
    flip-flop) and BVALID in cycle t+2, BUSY from t+3; a read returns data the cycle after
    its AR handshake."""
    def bench(dut):
        async def tb(ctx):
            bus = dut.bus
            ctx.set(bus.awvalid, 1)
            ctx.set(bus.awaddr, Reg.CTRL)
            ctx.set(bus.wvalid, 1)
            ctx.set(bus.wdata, 1)
            ctx.set(bus.wstrb, 0xF)
            ctx.set(bus.bready, 1)
            _, _, awready, start_now = await ctx.tick().sample(bus.awready, dut.start)
            assert not awready and not start_now
            _, _, awready, wready, start_now = await ctx.tick().sample(bus.awready,
                                                                       bus.wready, dut.start)
            assert awready and wready and not start_now
            ctx.set(bus.awvalid, 0)
            ctx.set(bus.wvalid, 0)
            assert ctx.get(bus.bvalid) and ctx.get(dut.start) and not ctx.get(dut.busy)
            await ctx.tick()
            assert ctx.get(dut.busy) and not ctx.get(dut.start)
            ctx.set(bus.arvalid, 1)
            ctx.set(bus.araddr, Reg.STATUS)
            ctx.set(bus.rready, 1)
            _, _, arready = await ctx.tick().sample(bus.arready)
            assert arready
            assert ctx.get(bus.rvalid) and ctx.get(bus.rdata) == 1
        return tb
    simulate(bench)


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_verilog_lint(name):
    lint_verilog(to_verilog(CSR(config=preset(name)), "csr"), "csr")
