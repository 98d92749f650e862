"""Cycle-accurate run of a program on the accelerator's RTL under Amaranth's simulator.

The top level (hw/top.py) runs with the shared DRAM model (sim/dram_model.py) on its AXI4
master port and a host testbench on its AXI4-Lite port that follows the start/done protocol of
docs/integration.md: write PROG_ADDR, PROG_LEN, IRQ_ENABLE, then CTRL.START; wait for `irq`;
read the status and the performance counters. Meant for small configurations (about a
thousand cycles per second); whole networks run under Verilator (sim/rtl_verilator.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from hw.axi.csr import COUNTERS, Reg
from hw.config import AcceleratorConfig
from hw.top import Top

from .amaranth_dram import dram_process
from .axil_host import LiteMaster
from .dram_model import AxiDramModel, DramTiming
from .rtl_result import RtlResult, RtlTimeout

__all__ = ["run_amaranth"]


def run_amaranth(config: AcceleratorConfig, dram: np.ndarray, *, program_address: int,
                 program_length: int, timing: DramTiming = DramTiming(),
                 max_cycles: int = 2_000_000, vcd: str | Path | None = None) -> RtlResult:
    """Run the program already placed in `dram` (a uint8 array of config.dram_bytes, changed
    in place to the final DRAM contents)."""
    top = Top(config=config)
    model = AxiDramModel(dram, bus_bytes=config.axi_data_bytes, timing=timing)
    result: dict = {}
    retirements: list[tuple[int, int]] = []

    async def watch_retire(ctx):
        cycle = 0
        async for _, _, mask in ctx.tick().sample(top.retire):
            if mask:
                retirements.append((cycle, int(mask)))
            cycle += 1

    async def host(ctx):
        lite = LiteMaster(top.s_axil)
        await lite.write(ctx, Reg.PROG_ADDR, program_address)
        await lite.write(ctx, Reg.PROG_LEN, program_length)
        await lite.write(ctx, Reg.IRQ_ENABLE, 1)
        await lite.write(ctx, Reg.CTRL, 1)
        waited = 0
        while not ctx.get(top.irq):
            await ctx.tick()
            waited += 1
            if waited > max_cycles:
                result["timeout"] = waited
                return
        result["error_code"] = await lite.read_ok(ctx, Reg.ERROR_CODE)
        result["error_index"] = await lite.read_ok(ctx, Reg.ERROR_INDEX)
        for i, name in enumerate(COUNTERS):
            low = await lite.read_ok(ctx, Reg.COUNTERS + 8 * i)
            high = await lite.read_ok(ctx, Reg.COUNTERS + 8 * i + 4)
            result[name] = low | high << 32
        await lite.write(ctx, Reg.IRQ_STATUS, 1)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_process(dram_process(top.m_axi, model))
    sim.add_process(watch_retire)
    sim.add_testbench(host)
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    if "timeout" in result:
        raise RtlTimeout(f"no interrupt within {max_cycles} cycles")
    return RtlResult.from_registers(result, read_bytes=model.read_bytes,
                                    write_bytes=model.write_bytes, retirements=retirements)
