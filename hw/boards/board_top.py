"""The accelerator as a usable board design: top level + block-RAM DRAM + UART bridge.

`BoardTop(config=, divisor=)` is platform-independent (simulation, lint and vendor flows use
it as is); hw/boards/platform_top.py puts it on an amaranth-boards platform.

Ports
-----
uart_rx : In(1)  serial line from the host (idle high), 8N1 at clock / `divisor` baud.
uart_tx : Out(1) serial line to the host.
irq     : Out(1) the accelerator's interrupt (for an LED).
busy    : Out(1) a DRAM burst is in flight (for an LED).
clk, rst (added by Amaranth).

The DRAM stand-in holds `config.dram_bytes` (the accelerator's whole address space, so every
address it can issue exists); the host protocol is in hw/boards/bridge.py.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from hw.config import AcceleratorConfig
from hw.top import Top

from .bridge import UartBridge
from .dram import BlockRamDram
from .uart import UARTRx, UARTTx

__all__ = ["BoardTop", "divisor_for"]


def divisor_for(clock_hz: float, baud: int) -> int:
    """Clock cycles per UART bit, rounded; the bit time error stays under 2% above 4."""
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ValueError(f"a {clock_hz / 1e6:g} MHz clock is too slow for {baud} baud "
                         "(needs at least 4 cycles per bit)")
    return divisor


class BoardTop(wiring.Component):
    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    irq: Out(1)
    busy: Out(1)

    def __init__(self, *, config: AcceleratorConfig, divisor: int) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config = config
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.top = top = Top(config=self.config)
        m.submodules.dram = dram = BlockRamDram(config=self.config,
                                                size_bytes=self.config.dram_bytes)
        m.submodules.bridge = bridge = UartBridge()
        m.submodules.uart_rx = rx = UARTRx(divisor=self.divisor)
        m.submodules.uart_tx = tx = UARTTx(divisor=self.divisor)
        connect(m, top.m_axi, dram.axi)
        connect(m, bridge.csr, top.s_axil)
        connect(m, rx.o, bridge.rx)
        connect(m, bridge.tx, tx.i)
        connect(m, bridge.dram_rd, dram.host_rd)
        connect(m, dram.host_rd_data, bridge.dram_rd_data)
        connect(m, bridge.dram_wr, dram.host_wr)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx), self.irq.eq(top.irq),
                     self.busy.eq(top.m_axi.rvalid | top.m_axi.wvalid)]
        return m
