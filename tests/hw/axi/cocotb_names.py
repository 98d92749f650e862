"""cocotb bench for test_signatures.py: cocotbext-axi's AxiRam and AxiLiteMaster attach to the
conventional port names (`m_axi_*`, `s_axil_*`) of the generated Verilog and move data."""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from hw.axi.bursts import Descriptor
from hw.axi.csr import ID_VALUE, Reg


def descriptor(**fields) -> int:
    base = {"size0": 1, "count1": 1, "count2": 1}
    return Descriptor.const({**base, **fields}).as_bits()


async def handshake(dut, name: str) -> None:
    getattr(dut, f"{name}_valid").value = 1
    await RisingEdge(dut.clk)
    while not getattr(dut, f"{name}_ready").value:
        await RisingEdge(dut.clk)
    getattr(dut, f"{name}_valid").value = 0


@cocotb.test()
async def buses_attach_by_prefix(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=1 << 14)
    csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    for name in ("load_valid", "store_valid", "store_words_valid"):
        getattr(dut, name).value = 0
    dut.words_ready.value = 1
    dut.store_done_ready.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0

    assert await csr.read_dword(Reg.ID) == ID_VALUE
    await csr.write_dword(Reg.PROG_ADDR, 0xCAFE0000)
    assert await csr.read_dword(Reg.PROG_ADDR) == 0xCAFE0000

    ram.write(0, bytes(range(64)))
    dut.load_payload.value = descriptor(dram_addr=0, size0=16)
    await handshake(dut, "load")
    words = []
    while len(words) < 16:
        await RisingEdge(dut.clk)
        if dut.words_valid.value:
            words.append(int(dut.words_payload.value) & 0xFFFFFFFF)
    assert words == [int.from_bytes(bytes(range(4 * i, 4 * i + 4)), "little") for i in range(16)]

    dut.store_payload.value = descriptor(dram_addr=0x1000, size0=4)
    await handshake(dut, "store")
    for i in range(4):
        dut.store_words_payload.value = 0x11111111 * (i + 1)
        await handshake(dut, "store_words")
    while not dut.store_done_valid.value:
        await RisingEdge(dut.clk)
    assert ram.read(0x1000, 16) == b"".join(
        (0x11111111 * (i + 1)).to_bytes(4, "little") for i in range(4))
