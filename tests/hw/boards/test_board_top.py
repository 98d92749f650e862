# amaranth: UnusedElaboratable=no
"""The board top level through its UART bridge: a host writes a program and its data into the
block-RAM DRAM, starts the accelerator through the CSRs, polls STATUS and reads the result
back, which equals the functional model's bit for bit. Also: the board Verilog is lint clean."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw import isa
from hw.axi.csr import ID_VALUE, Reg
from hw.boards.board_top import BoardTop, divisor_for
from hw.config import preset
from hw.isa import Activation, Add, Buffer, End, Load, Store
from hw.lint import lint_verilog, to_verilog
from sim import board_host
from sim.functional import FunctionalMachine

# The OrangeCrab preset: 4x4, 32-bit AXI, a 64 KiB DRAM stand-in; small enough for Amaranth.
CONFIG = preset("orangecrab-25f")
DIVISOR = 4                 # the fastest UART the receiver allows: 40 cycles per byte
STATUS_DONE = 1 << 1


class UartLine:
    """The host's end of the serial line: sends bytes on `uart_rx`, decodes `uart_tx`."""

    def __init__(self, dut, divisor: int) -> None:
        self.dut, self.divisor, self.received = dut, divisor, []
        self.closed = False

    async def send(self, ctx, payload: bytes) -> None:
        for byte in payload:
            for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                ctx.set(self.dut.uart_rx, bit)
                await ctx.tick().repeat(self.divisor)

    def receiver(self):
        async def testbench(ctx):
            # Polls the line every cycle so it can stop when the host closes the line.
            while not self.closed:
                if ctx.get(self.dut.uart_tx):
                    await ctx.tick()
                    continue
                # Middle of data bit 0 is 1.5 bits after the start bit's falling edge.
                await ctx.tick().repeat(self.divisor + self.divisor // 2 - 1)
                byte = 0
                for i in range(8):
                    byte |= ctx.get(self.dut.uart_tx) << i
                    await ctx.tick().repeat(self.divisor)
                assert ctx.get(self.dut.uart_tx) == 1, "missing stop bit"
                self.received.append(byte)
        return testbench

    def run(self, host) -> None:
        """Simulate the board with the line's receiver and `host(ctx)`; the line closes when
        the host returns."""
        async def testbench(ctx):
            await host(ctx)
            self.closed = True

        sim = Simulator(self.dut)
        sim.add_clock(1e-8)
        sim.add_testbench(self.receiver())
        sim.add_testbench(testbench)
        sim.run()

    async def transact(self, ctx, request: tuple[bytes, int]) -> bytes:
        payload, reply_bytes = request
        start = len(self.received)
        await self.send(ctx, payload)
        while len(self.received) < start + reply_bytes:
            await ctx.tick()
        return bytes(self.received[start:start + reply_bytes])


def add_program(count: int, a_addr: int, b_addr: int, out_addr: int) -> list:
    """out = saturate((a * 11000 + b * -7000) >> 14) with ReLU, over `count` words."""
    return [
        Load(buffer=Buffer.IBUF, buf_addr=0, dram_addr=a_addr, size0=count, count1=1, count2=1),
        Load(buffer=Buffer.IBUF, buf_addr=64, dram_addr=b_addr, size0=count, count1=1,
             count2=1, push_next=True),
        Add(pop_prev=True, push_next=True, activation=Activation.RELU, a_addr=0, b_addr=64,
            count=count, obuf_addr=0, mult_a=11000, mult_b=-7000, shift=14),
        Store(pop_prev=True, buffer=Buffer.OBUF, dram_addr=out_addr, size0=count, count1=1,
              count2=1),
        End(),
    ]


def test_program_through_uart_bridge_equals_functional_model():
    rng = np.random.default_rng(8)
    count = 5
    a_addr, out_addr = 0x200, 0x400
    operands = rng.integers(-128, 128, 2 * count * CONFIG.lanes).astype(np.int8).tobytes()
    b_addr = a_addr + count * CONFIG.word_bytes
    program = add_program(count, a_addr, b_addr, out_addr)
    code = isa.encode_program(program)

    machine = FunctionalMachine(CONFIG, b"")
    machine.write_dram(0, code)
    machine.write_dram(a_addr, operands)
    machine.run(program)
    want = machine.read_dram(out_addr, count * CONFIG.word_bytes)

    dut = BoardTop(config=CONFIG, divisor=DIVISOR)
    line = UartLine(dut, DIVISOR)
    got = {}

    async def host(ctx):
        assert await line.transact(ctx, board_host.write_dram(0, code)) == b"\x01"
        assert await line.transact(ctx, board_host.write_dram(a_addr, operands)) == b"\x01"
        ident = await line.transact(ctx, board_host.read_csr(Reg.ID))
        assert int.from_bytes(ident, "little") == ID_VALUE
        for reg, value in ((Reg.PROG_ADDR, 0), (Reg.PROG_LEN, len(program)),
                           (Reg.IRQ_ENABLE, 1), (Reg.CTRL, 1)):
            assert await line.transact(ctx, board_host.write_csr(reg, value)) == b"\x00"
        for _ in range(20):
            status = await line.transact(ctx, board_host.read_csr(Reg.STATUS))
            if int.from_bytes(status, "little") & STATUS_DONE:
                break
        got["status"] = int.from_bytes(status, "little")
        got["error"] = int.from_bytes(
            await line.transact(ctx, board_host.read_csr(Reg.ERROR_CODE)), "little")
        got["irq"] = ctx.get(dut.irq)
        got["out"] = await line.transact(ctx, board_host.read_dram(out_addr,
                                                                   count * CONFIG.word_bytes))

    line.run(host)
    assert got["status"] & STATUS_DONE and got["error"] == 0 and got["irq"] == 1
    assert got["out"] == want


def test_unknown_command_answers_resync_byte():
    dut = BoardTop(config=CONFIG, divisor=DIVISOR)
    line = UartLine(dut, DIVISOR)
    got = {}

    async def host(ctx):
        got["reply"] = await line.transact(ctx, (b"\x7f", 1))
        got["after"] = await line.transact(ctx, board_host.read_csr(Reg.ID))

    line.run(host)
    assert got["reply"] == b"\xee"
    assert int.from_bytes(got["after"], "little") == ID_VALUE


def test_divisor_for_rejects_too_slow_clocks():
    assert divisor_for(25e6, 115200) == 217
    with pytest.raises(ValueError, match="too slow"):
        divisor_for(300e3, 115200)


def test_board_verilog_is_lint_clean():
    lint_verilog(to_verilog(BoardTop(config=CONFIG, divisor=divisor_for(48e6, 115200)),
                            "board_top"), "board_top")
