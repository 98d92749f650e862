# amaranth: UnusedElaboratable=no
"""BitFIFO against SyncFIFO(width=1) on random traffic: every output equal in every cycle."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib.fifo import SyncFIFO
from amaranth.sim import Simulator

from hw.compute.bit_fifo import BitFIFO
from hw.lint import lint_verilog, to_verilog


@pytest.mark.parametrize("depth, write_rate, read_rate", [
    (4, 0.5, 0.5), (4, 0.8, 0.3), (4, 0.3, 0.8), (1, 0.6, 0.5), (3, 0.9, 0.6)])
def test_bit_fifo_matches_syncfifo_cycle_by_cycle(depth, write_rate, read_rate):
    m = Module()
    m.submodules.dut = dut = BitFIFO(depth=depth)
    m.submodules.ref = ref = SyncFIFO(width=1, depth=depth)
    rng = np.random.default_rng(depth * 100 + int(10 * write_rate))
    cycles = 600
    w_en, w_data = rng.random(cycles) < write_rate, rng.integers(0, 2, cycles)
    r_en = rng.random(cycles) < read_rate
    seen = {"full": 0, "reads": 0}

    async def tb(ctx):
        for t in range(cycles):
            for port in (dut, ref):
                ctx.set(port.w_en, int(w_en[t]))
                ctx.set(port.w_data, int(w_data[t]))
                ctx.set(port.r_en, int(r_en[t]))
            got = [ctx.get(dut.w_rdy), ctx.get(dut.r_rdy)]
            want = [ctx.get(ref.w_rdy), ctx.get(ref.r_rdy)]
            assert got == want, t
            if want[1]:
                assert ctx.get(dut.r_data) == ctx.get(ref.r_data), t
                seen["reads"] += int(r_en[t])
            seen["full"] += int(not want[0])
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert seen["reads"] > 50
    assert seen["full"] > 0 or write_rate < read_rate    # the full case is exercised


def test_bit_fifo_rejects_a_bad_depth():
    with pytest.raises(ValueError, match="depth must be an integer from 1 to 64, not 0"):
        BitFIFO(depth=0)


def test_bit_fifo_lints_clean():
    lint_verilog(to_verilog(BitFIFO(depth=4), "bit_fifo"), "bit_fifo")
