"""8N1 UART receiver and transmitter with a fixed clock divisor (clock cycles per bit).

`UARTRx`: port `rx` (In 1, the line, idle high), `o` (Out stream of 8-bit bytes). A byte is
sampled in the middle of each bit; it is valid 9.5 bit times after its start bit's falling
edge and held until taken (a byte that arrives before the previous one is taken replaces it:
the bridge takes every byte within a few cycles, far less than the 10 bit times of a frame).
`UARTTx`: port `i` (In stream of bytes), `tx` (Out 1). A byte is taken when the transmitter
is idle and takes 10 bit times (start, 8 data bits LSB first, stop).
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx"]


def _check_divisor(divisor: int) -> None:
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"divisor must be an integer of at least 4 clock cycles per bit, "
                         f"not {divisor!r}")


class UARTRx(wiring.Component):
    rx: In(1, init=1)
    o: Out(stream.Signature(8))

    def __init__(self, *, divisor: int) -> None:
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        # Two flip-flops: the line is asynchronous to the clock.
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bits = Signal(range(9))
        shift = Signal(8)
        byte = Signal(8)
        full = Signal()
        m.d.comb += [self.o.valid.eq(full), self.o.payload.eq(byte)]
        with m.If(self.o.ready):
            m.d.sync += full.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # First data bit is 1.5 bits after the falling edge: its middle.
                    m.d.sync += [timer.eq(self.divisor * 3 // 2 - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), timer.eq(self.divisor - 1),
                                 bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [byte.eq(shift), full.eq(1)]
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, *, divisor: int) -> None:
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        timer = Signal(range(self.divisor))
        bits = Signal(range(10))
        # Start bit, 8 data bits, stop bit; shifted out LSB first. Idle line is high.
        frame = Signal(10, init=0x3FF)
        busy = Signal()
        m.d.comb += [self.tx.eq(frame[0]), self.i.ready.eq(~busy)]
        with m.If(~busy):
            with m.If(self.i.valid):
                m.d.sync += [frame.eq(Cat(0, self.i.payload, 1)), busy.eq(1),
                             timer.eq(self.divisor - 1), bits.eq(9)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [frame.eq(Cat(frame[1:], 1)), timer.eq(self.divisor - 1),
                             bits.eq(bits - 1)]
                with m.If(bits == 0):
                    m.d.sync += busy.eq(0)
        return m
