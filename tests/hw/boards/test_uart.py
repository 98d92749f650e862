# amaranth: UnusedElaboratable=no
"""UART transmitter into receiver: bytes arrive in order at several divisors, with the
receiver's consumer stalling; the transmitter's frame is 10 bit times."""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.boards.uart import UARTRx, UARTTx
from tests.streams import collect, feed, run_sim


class Loopback(wiring.Component):
    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__({"i": In(UARTTx(divisor=divisor).i.signature.flip()),
                          "o": Out(UARTRx(divisor=divisor).o.signature), "line": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = tx = UARTTx(divisor=self.divisor)
        m.submodules.rx = rx = UARTRx(divisor=self.divisor)
        wiring.connect(m, wiring.flipped(self.i), tx.i)
        wiring.connect(m, rx.o, wiring.flipped(self.o))
        m.d.comb += [rx.rx.eq(tx.tx), self.line.eq(tx.tx)]
        return m


@pytest.mark.parametrize("divisor", [4, 5, 16])
def test_bytes_arrive_in_order(divisor):
    data = [int(b) for b in np.random.default_rng(divisor).integers(0, 256, 12)]
    dut = Loopback(divisor)
    got = []

    async def send(ctx):
        await feed(ctx, dut.i, data, gaps=0.3, seed=divisor)

    async def receive(ctx):
        got.extend(await collect(ctx, dut.o, len(data), stalls=0.5, seed=divisor,
                                 convert=int))

    run_sim(dut, send, receive)
    assert got == data


def test_frame_is_ten_bit_times():
    dut = Loopback(4)
    low = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, 0x00)       # start bit and 8 zero bits: 9 low bit times
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(60):
            low.append(1 - ctx.get(dut.line))
            await ctx.tick()

    run_sim(dut, bench)
    assert sum(low) == 9 * 4


def test_divisor_is_checked():
    with pytest.raises(ValueError, match="at least 4"):
        UARTRx(divisor=3)
