"""The cocotb testbench of any Systolica top level: clock, reset, DRAM and the register bus.

`TB(dut)` expects the port names `component_verilog` (tests/cocotb/runner.py) writes: `clk`,
`rst` (synchronous, active high), the AXI4 master `m_axi_*`, the AXI4-Lite slave `s_axil_*`
and `irq`. It owns

- the clock (`CLOCK_PERIOD_NS`) and reset (`await tb.reset()`);
- `tb.ram`, a cocotbext-axi `AxiRam` on `m_axi` (the DRAM: `tb.write_mem`/`tb.read_mem`
  read and write its bytes directly, outside simulated time);
- `tb.axil`, a cocotbext-axi `AxiLiteMaster` on `s_axil` (`await tb.write_reg(offset, value)`,
  `await tb.read_reg(offset)`; both require an OKAY response);
- traffic shaping on every AXI channel, seeded: `tb.set_backpressure(True)` makes the bench
  drop READY at random on every channel it receives (AW, W, AR of DRAM; B, R of the register
  bus), `tb.set_idle(True)` makes it insert random idle cycles (VALID low) on every channel it
  drives (R, B of DRAM; AW, W, AR of the register bus);
- `await tb.wait_irq(timeout_cycles)`: the cycles until `irq` is high, or an AssertionError;
- `tb.monitor_bursts()` / `tb.bursts()`: the AR and AW requests seen on `m_axi`, to check
  burst shapes (length, 4 KiB boundaries).

The models log at WARNING so that the simulator log holds the bench's own messages; pass
`verbose=True` for cocotbext-axi's per-burst INFO lines.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam, AxiResp
from cocotbext.axi.axi_channels import AxiARMonitor, AxiAWMonitor

from hw.axi.csr import Reg

__all__ = ["CLOCK_PERIOD_NS", "PAUSE_PROBABILITY", "Burst", "TB"]

#: 100 MHz, the config's reference clock (hw/config.py clock_mhz).
CLOCK_PERIOD_NS = 10
#: Chance that a shaped channel is paused in a given cycle: 30% keeps every channel moving
#: while making most bursts see several stalls.
PAUSE_PROBABILITY = 0.3


class Burst(NamedTuple):
    """One AXI4 address request seen on `m_axi`."""
    kind: str    #: "read" or "write"
    addr: int
    beats: int   #: AxLEN + 1
    size: int    #: bytes per beat (2**AxSIZE)

    @property
    def end(self) -> int:
        return self.addr + self.beats * self.size


def _pauses(seed: list[int], probability: float) -> Iterator[bool]:
    rng = np.random.default_rng(seed)
    while True:
        yield from (rng.random(1024) < probability).tolist()


class TB:
    """See the module docstring. `seed` seeds the pause generators (one stream per channel);
    `ram_bytes` is the DRAM model's size (sparse: only written pages use memory)."""

    def __init__(self, dut: SimHandleBase, *, seed: int = 0, ram_bytes: int | None = None,
                 verbose: bool = False) -> None:
        # cocotbext-axi 0.1.28 still calls APIs that cocotb 2.1 deprecates (Task.kill,
        # Event.data, setimmediatevalue): harmless, but one warning per model floods the log.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.axi")
        self.dut = dut
        self.seed = seed
        dut.rst.value = 1   # in reset from time 0, so the bus models start idle
        self.log = logging.getLogger("cocotb.tb")
        self.log.setLevel(logging.INFO)
        Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
        if ram_bytes is None:
            ram_bytes = 1 << len(dut.m_axi_araddr)
        # cocotbext-axi names its loggers cocotb.<toplevel>.<prefix>; set them before the
        # models print their configuration (~60 lines each).
        for prefix in ("m_axi", "s_axil"):
            logging.getLogger(f"cocotb.{dut._name}.{prefix}").setLevel(
                logging.INFO if verbose else logging.WARNING)
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=ram_bytes)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self._monitors: tuple[AxiARMonitor, AxiAWMonitor] | None = None

    # ---- clock and reset -------------------------------------------------------------------

    @property
    def cycle(self) -> int:
        """Clock cycles since time zero."""
        return round(get_sim_time("ns") / CLOCK_PERIOD_NS)

    async def cycles(self, count: int) -> None:
        await ClockCycles(self.dut.clk, count)

    async def reset(self, cycles: int = 4) -> None:
        """Hold `rst` high for `cycles` rising edges, release it, and let one more edge pass."""
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    # ---- DRAM ------------------------------------------------------------------------------

    def write_mem(self, addr: int, data: bytes) -> None:
        self.ram.write(addr, bytes(data))

    def read_mem(self, addr: int, length: int) -> bytes:
        return bytes(self.ram.read(addr, length))

    # ---- registers -------------------------------------------------------------------------

    async def write_reg(self, offset: int, value: int) -> None:
        response = await self.axil.write(offset, int(value).to_bytes(4, "little"))
        if response.resp != AxiResp.OKAY:
            raise AssertionError(f"register write at 0x{offset:02x} answered {response.resp!r}")

    async def read_reg(self, offset: int) -> int:
        response = await self.axil.read(offset, 4)
        if response.resp != AxiResp.OKAY:
            raise AssertionError(f"register read at 0x{offset:02x} answered {response.resp!r}")
        return int.from_bytes(response.data, "little")

    async def wait_irq(self, timeout_cycles: int) -> int:
        """Wait until `irq` is high; return the cycles waited. Fails after `timeout_cycles`."""
        start = self.cycle
        if not self.dut.irq.value:
            try:
                await with_timeout(RisingEdge(self.dut.irq), timeout_cycles * CLOCK_PERIOD_NS,
                                   "ns")
            except SimTimeoutError:
                raise AssertionError(f"irq did not rise within {timeout_cycles} cycles") from None
        return self.cycle - start

    async def launch(self, address: int, length: int, timeout_cycles: int) -> tuple[int, int, int]:
        """Start the program of `length` instructions at `address` as software does, wait for
        `irq`, clear it; return STATUS, ERROR_CODE and ERROR_INDEX."""
        await self.write_reg(Reg.IRQ_ENABLE, 1)
        await self.write_reg(Reg.PROG_ADDR, address)
        await self.write_reg(Reg.PROG_LEN, length)
        await self.write_reg(Reg.CTRL, 1)
        await self.wait_irq(timeout_cycles)
        status = await self.read_reg(Reg.STATUS)
        error = await self.read_reg(Reg.ERROR_CODE)
        index = await self.read_reg(Reg.ERROR_INDEX)
        await self.write_reg(Reg.IRQ_STATUS, 1)
        assert not self.dut.irq.value, "irq stayed high after IRQ_STATUS was cleared"
        return status, error, index

    # ---- traffic shaping -------------------------------------------------------------------

    def _receivers(self):
        return (self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                self.ram.read_if.ar_channel, self.axil.write_if.b_channel,
                self.axil.read_if.r_channel)

    def _senders(self):
        return (self.ram.read_if.r_channel, self.ram.write_if.b_channel,
                self.axil.write_if.aw_channel, self.axil.write_if.w_channel,
                self.axil.read_if.ar_channel)

    def _shape(self, channels, enabled: bool, stream: int) -> None:
        for index, channel in enumerate(channels):
            if enabled:
                seed = [self.seed, stream, index]
                channel.set_pause_generator(_pauses(seed, PAUSE_PROBABILITY))
            else:
                channel.clear_pause_generator()

    def set_backpressure(self, enabled: bool) -> None:
        """Random READY stalls on every channel the bench receives (see the module docstring)."""
        self._shape(self._receivers(), enabled, stream=0)

    def set_idle(self, enabled: bool) -> None:
        """Random VALID gaps on every channel the bench drives (see the module docstring)."""
        self._shape(self._senders(), enabled, stream=1)

    # ---- burst monitor ---------------------------------------------------------------------

    def monitor_bursts(self) -> None:
        """Start recording the AR and AW requests on `m_axi` (read them with `bursts()`)."""
        bus = AxiBus.from_prefix(self.dut, "m_axi")
        self._monitors = (AxiARMonitor(bus.read.ar, self.dut.clk, self.dut.rst),
                          AxiAWMonitor(bus.write.aw, self.dut.clk, self.dut.rst))

    def bursts(self) -> list[Burst]:
        """The requests recorded since the last call, reads then writes, each in bus order."""
        if self._monitors is None:
            raise RuntimeError("call monitor_bursts() before the traffic to record it")
        found = []
        for kind, monitor, prefix in zip(("read", "write"), self._monitors, ("ar", "aw")):
            while not monitor.empty():
                request = monitor.recv_nowait()
                found.append(Burst(kind, int(getattr(request, f"{prefix}addr")),
                                   int(getattr(request, f"{prefix}len")) + 1,
                                   1 << int(getattr(request, f"{prefix}size"))))
        return found

