"""`BoardTop` on an amaranth-boards platform: the board's oscillator clocks the design (the
platform adds its power-on reset), the UART goes to the board's serial pins, LED 0 shows the
interrupt.

The UART runs at `BAUD` from the board clock, so the bitstream works at the oscillator
frequency (25, 48 or 12 MHz); the Fmax in the synthesis report says how far a PLL could raise
the clock.
"""

from amaranth import Elaboratable, Module
from amaranth.build import Attrs
from amaranth.lib import io
from amaranth_boards.resources import UARTResource

from .board_top import BoardTop, divisor_for

__all__ = ["PlatformTop", "BAUD", "add_feather_uart"]

BAUD = 115200


def add_feather_uart(platform) -> None:
    """OrangeCrab has no serial port on its resources: the Feather header's RX/TX pins
    (io 0 and 1) carry the UART."""
    platform.add_resources([UARTResource(0, rx="0", tx="1", conn=("io", 0),
                                         attrs=Attrs(IO_TYPE="LVCMOS33"))])


class PlatformTop(Elaboratable):
    def __init__(self, *, config) -> None:
        self.config = config

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.board = board = BoardTop(
            config=self.config, divisor=divisor_for(platform.default_clk_frequency, BAUD))
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [board.uart_rx.eq(rx.i), tx.o.eq(board.uart_tx)]
        if "led" in {r.name for r in platform.resources.values()}:
            m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
            m.d.comb += led.o.eq(board.irq)
        return m
