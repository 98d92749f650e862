"""Serve an Amaranth AXI4 master port from `sim.dram_model.AxiDramModel` in the simulator.

`dram_process(bus, model)` returns an async process for `Simulator.add_process`: every cycle it
drives the slave side of `bus` (an `hw.axi.signatures.AXI4Signature` interface, or its read or
write half) from the model's state, samples the master's outputs at the clock edge and lets the
model apply the handshakes. The Verilator harness does the same in C++.
"""

from __future__ import annotations

from sim.dram_model import AxiDramModel

__all__ = ["dram_process"]

_DRIVEN = {
    "read": ("arready", "rvalid", "rdata", "rid", "rresp", "rlast"),
    "write": ("awready", "wready", "bvalid", "bid", "bresp"),
}
_SAMPLED = {
    "read": ("arvalid", "arid", "araddr", "arlen", "arsize", "rready"),
    "write": ("awvalid", "awid", "awaddr", "awlen", "awsize", "wvalid", "wdata", "wstrb",
              "wlast", "bready"),
}
_IDLE = {"arvalid": 0, "arid": 0, "araddr": 0, "arlen": 0, "arsize": 0, "rready": 0,
         "awvalid": 0, "awid": 0, "awaddr": 0, "awlen": 0, "awsize": 0, "wvalid": 0,
         "wdata": 0, "wstrb": 0, "wlast": 0, "bready": 0}


def dram_process(bus, model: AxiDramModel):
    halves = [h for h in ("read", "write") if hasattr(bus, _SAMPLED[h][0])]
    driven_names = [n for h in halves for n in _DRIVEN[h]]
    sampled_names = [n for h in halves for n in _SAMPLED[h]]
    # Enum-shaped members (RRESP, BRESP) are views: drive and sample their raw bits.
    raw = lambda sig: sig.as_value() if hasattr(sig, "as_value") else sig
    driven_signals = [raw(getattr(bus, n)) for n in driven_names]
    sampled_signals = [raw(getattr(bus, n)) for n in sampled_names]

    async def process(ctx):
        while True:
            driven = model.outputs()
            for name, signal in zip(driven_names, driven_signals):
                ctx.set(signal, driven[name])
            values = await ctx.tick().sample(*sampled_signals)
            master = dict(_IDLE)
            master.update({name: int(v) for name, v in zip(sampled_names, values[2:])})
            model.clock(master, driven)

    return process
