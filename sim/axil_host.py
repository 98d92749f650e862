"""An AXI4-Lite master for Amaranth async testbenches: the host side of the CSRs.

Used by the Amaranth RTL backend (sim/rtl_amaranth.py) to start programs and read counters,
and by the CSR tests, which also idle random cycles before each handshake (`gaps`).
"""

from __future__ import annotations

import numpy as np

from hw.axi.signatures import AXIResp

__all__ = ["LiteMaster"]


class LiteMaster:
    """AXI4-Lite master for async testbenches; `gaps` idles random cycles before each
    channel's VALID and before each READY (seeded)."""

    def __init__(self, bus, *, gaps: float = 0.0, seed: int = 0) -> None:
        self.bus = bus
        self.gaps = gaps
        self.rng = np.random.default_rng(seed)

    async def _idle(self, ctx):
        while self.gaps and self.rng.random() < self.gaps:
            await ctx.tick()

    async def write(self, ctx, addr: int, value: int, strobe: int = 0xF) -> AXIResp:
        bus = self.bus
        await self._idle(ctx)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.awaddr, addr)
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.wdata, value)
        ctx.set(bus.wstrb, strobe)
        aw_done = w_done = False
        while not (aw_done and w_done):
            _, _, awready, wready = await ctx.tick().sample(bus.awready, bus.wready)
            aw_done |= bool(awready)
            w_done |= bool(wready)
            if aw_done:
                ctx.set(bus.awvalid, 0)
            if w_done:
                ctx.set(bus.wvalid, 0)
        await self._idle(ctx)
        ctx.set(bus.bready, 1)
        (resp,) = await ctx.tick().sample(bus.bresp).until(bus.bvalid)
        ctx.set(bus.bready, 0)
        return resp

    async def read(self, ctx, addr: int) -> tuple[int, AXIResp]:
        bus = self.bus
        await self._idle(ctx)
        ctx.set(bus.arvalid, 1)
        ctx.set(bus.araddr, addr)
        await ctx.tick().until(bus.arready)
        ctx.set(bus.arvalid, 0)
        await self._idle(ctx)
        ctx.set(bus.rready, 1)
        data, resp = await ctx.tick().sample(bus.rdata, bus.rresp).until(bus.rvalid)
        ctx.set(bus.rready, 0)
        return data, resp

    async def read_ok(self, ctx, addr: int) -> int:
        data, resp = await self.read(ctx, addr)
        assert resp == AXIResp.OKAY, (addr, resp)
        return data
