"""Stream helpers for Amaranth 0.5 async testbenches, shared by every hardware test.

`put` and `get` move one payload through a `stream.Signature` port; `feed` and `collect` move
many, optionally with random idle cycles on the producer side (gaps) and random stalls on the
consumer side (backpressure), seeded for repeatability. `run_sim` wires testbenches into a
`Simulator` with one clock.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

__all__ = ["put", "get", "feed", "collect", "run_sim"]


async def put(ctx, port, payload) -> None:
    ctx.set(port.valid, 1)
    ctx.set(port.payload, payload)
    await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def get(ctx, port):
    ctx.set(port.ready, 1)
    (payload,) = await ctx.tick().sample(port.payload).until(port.valid)
    ctx.set(port.ready, 0)
    return payload


async def feed(ctx, port, payloads, *, gaps: float = 0.0, seed: int = 0) -> None:
    """Send every payload in order; with `gaps` > 0, idle that fraction of cycles."""
    rng = np.random.default_rng(seed)
    for payload in payloads:
        while gaps and rng.random() < gaps:
            await ctx.tick()
        await put(ctx, port, payload)


async def collect(ctx, port, count: int, *, stalls: float = 0.0, seed: int = 1,
                  convert=lambda v: v) -> list:
    """Receive `count` payloads; with `stalls` > 0, hold ready low that fraction of cycles."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        while stalls and rng.random() < stalls:
            ctx.set(port.ready, 0)
            await ctx.tick()
        out.append(convert(await get(ctx, port)))
    return out


def run_sim(dut, *testbenches, processes=(), vcd: str | None = None,
            deadline_cycles: int | None = None) -> None:
    """Simulate `dut` with a 1-cycle-period clock until every testbench returns."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for tb in testbenches:
        sim.add_testbench(tb)
    for proc in processes:
        sim.add_process(proc)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run_until(1e-8 * deadline_cycles) if deadline_cycles else sim.run()
    elif deadline_cycles:
        sim.run_until(1e-8 * deadline_cycles)
    else:
        sim.run()
