"""AXI signatures: conventional Verilog port names that cocotbext-axi finds, and
`connect_channels` joining a read and a write engine on one AXI4 port so that loads and
stores overlap."""

import re
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from cocotb_tools.runner import get_results, get_runner
from cocotbext.axi.axi_channels import AxiARBus, AxiAWBus, AxiBBus, AxiRBus, AxiWBus
from cocotbext.axi.axil_channels import (AxiLiteARBus, AxiLiteAWBus, AxiLiteBBus,
                                         AxiLiteRBus, AxiLiteWBus)

from hw.axi.bursts import Descriptor
from hw.axi.csr import CSR
from hw.axi.read_dma import ReadDMA
from hw.axi.signatures import (AXI4LiteSignature, AXI4ReadSignature, AXI4Signature,
                               AXI4WriteSignature, AXIResp, connect_channels,
                               conventional_ports)
from hw.axi.write_dma import WriteDMA
from hw.config import preset
from hw.lint import lint_verilog
from tests.hw.axi.axi_model import AXI4Memory
from tests.hw.axi.dma_cases import descriptor_payload, word_offsets
from tests.streams import put


class BusPair(wiring.Component):
    """A read and a write engine behind one AXI4 master port, plus the CSR slave: the shape
    of the accelerator's bus interfaces."""

    def __init__(self, config):
        self.config = config
        self.reader = ReadDMA(config=config)
        self.writer = WriteDMA(config=config)
        self.csr = CSR(config=config)
        super().__init__({
            "m_axi": Out(AXI4Signature(data_bits=config.axi_data_bits,
                                       id_bits=config.axi_id_bits)),
            "s_axil": In(AXI4LiteSignature(addr_bits=8)),
            "load": In(stream.Signature(Descriptor)),
            "words": Out(stream.Signature(self.reader.word_layout)),
            "store": In(stream.Signature(Descriptor)),
            "store_words": In(stream.Signature(8 * self.writer.max_word_bytes)),
            "store_done": Out(stream.Signature(self.writer.done_layout)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = self.reader
        m.submodules.writer = self.writer
        m.submodules.csr = self.csr
        connect_channels(m, self.m_axi, self.reader.bus, self.writer.bus)
        wiring.connect(m, wiring.flipped(self.s_axil), self.csr.bus)
        wiring.connect(m, wiring.flipped(self.load), self.reader.i)
        wiring.connect(m, wiring.flipped(self.words), self.reader.o)
        wiring.connect(m, wiring.flipped(self.store), self.writer.i)
        wiring.connect(m, wiring.flipped(self.store_words), self.writer.words)
        wiring.connect(m, wiring.flipped(self.store_done), self.writer.done)
        m.d.comb += [self.irq.eq(self.csr.irq), self.csr.done.eq(0)]
        return m


def cocotbext_names(bus_classes):
    """(required, optional) signal names cocotbext-axi looks up for these channel buses."""
    required, optional = set(), set()
    for cls in bus_classes:
        required |= set(cls._signals)
        optional |= set(cls._optional_signals)
    return required, optional


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_conventional_port_names_match_cocotbext_axi(name):
    dut = BusPair(preset(name))
    text = verilog.convert(dut, name="bus_pair", ports=conventional_ports(dut), emit_src=False)
    header = text[text.index("module bus_pair("):text.index(");")]
    ports = set(re.findall(r"\w+", header)) - {"module", "bus_pair"}
    for prefix, classes, signature in [
            ("m_axi", (AxiARBus, AxiRBus, AxiAWBus, AxiWBus, AxiBBus), dut.m_axi.signature),
            ("s_axil", (AxiLiteARBus, AxiLiteRBus, AxiLiteAWBus, AxiLiteWBus, AxiLiteBBus),
             dut.s_axil.signature)]:
        required, optional = cocotbext_names(classes)
        ours = {p[len(prefix) + 1:] for p in ports if p.startswith(prefix + "_")}
        assert ours == set(signature.members)
        assert required <= ours, required - ours
        assert ours <= required | optional, ours - required - optional
    assert {"clk", "rst", "irq"} <= ports
    assert not any("__" in p for p in ports if p.startswith(("m_axi", "s_axil")))
    lint_verilog(text, "bus_pair")


def test_cocotbext_axi_attaches_by_prefix(tmp_path):
    """Run cocotbext-axi's AxiRam and AxiLiteMaster on the Verilog (Icarus, ~3 s)."""
    dut = BusPair(preset("tiny"))
    source = tmp_path / "bus_pair.v"
    source.write_text(verilog.convert(dut, name="bus_pair", ports=conventional_ports(dut),
                                      emit_src=False))
    runner = get_runner("icarus")
    runner.build(sources=[source], hdl_toplevel="bus_pair", build_dir=tmp_path,
                 timescale=("1ns", "1ps"))
    results = runner.test(hdl_toplevel="bus_pair", test_module="cocotb_names",
                          build_dir=tmp_path, test_dir=Path(__file__).parent,
                          results_xml=str(tmp_path / "results.xml"))
    assert get_results(results) == (1, 0)


def test_connect_channels_checks_members():
    config = preset("tiny")
    full = AXI4Signature(data_bits=32, id_bits=config.axi_id_bits).create()
    read = AXI4ReadSignature(data_bits=32, id_bits=config.axi_id_bits).create()
    write = AXI4WriteSignature(data_bits=32, id_bits=config.axi_id_bits).create()
    wide = AXI4WriteSignature(data_bits=64, id_bits=config.axi_id_bits).create()
    m = Module()
    with pytest.raises(ValueError, match="come from no part"):
        connect_channels(m, full, read)
    with pytest.raises(ValueError, match="comes from parts 0 and 1"):
        connect_channels(m, full, read, read)
    with pytest.raises(ValueError, match="member 'wdata' is Out\\(64\\) in part 1"):
        connect_channels(m, full, read, wide)
    connect_channels(m, full, read, write)
    Fragment.get(m, None)
    with pytest.raises(ValueError, match="data_bits must be a power of two"):
        AXI4Signature(data_bits=48, id_bits=4)


def test_loads_and_stores_overlap():
    """A load and a store on one AXI4 port run at the same time: R and W beats share cycles,
    and the total is far below the sum of the two alone."""
    config = preset("tiny")
    dut = BusPair(config)
    rng = np.random.default_rng(21)
    memory = rng.integers(0, 256, 1 << 14, dtype=np.uint8)
    original = memory.copy()
    beat = config.axi_data_bytes
    load = {"dram_addr": 0, "size0": 96, "count1": 1, "stride1": 0, "count2": 1, "stride2": 0}
    store = {"dram_addr": 8192, "size0": 96, "count1": 1, "stride1": 0, "count2": 1,
             "stride2": 0}
    store_words = rng.integers(0, 256, (96, beat), dtype=np.uint8)
    slave = AXI4Memory(memory, data_bytes=beat, max_burst_beats=config.max_burst_beats,
                       latency=5)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    slave.add_to(sim, dut.m_axi)
    got = []

    async def loads(ctx):
        await put(ctx, dut.load, descriptor_payload(config, load, beat))

    async def stores(ctx):
        await put(ctx, dut.store, descriptor_payload(config, store, beat, tag=3))

    async def store_data(ctx):
        for word in store_words:
            await put(ctx, dut.store_words, int.from_bytes(word.tobytes(), "little"))

    async def results(ctx):
        ctx.set(dut.words.ready, 1)
        ctx.set(dut.store_done.ready, 1)
        done = None
        while len(got) < 96 or done is None:
            _, _, valid, payload, done_valid, done_payload = await ctx.tick().sample(
                dut.words.valid, dut.words.payload, dut.store_done.valid,
                dut.store_done.payload)
            if valid:
                got.append(int(payload.data).to_bytes(dut.reader.max_word_bytes,
                                                      "little")[:beat])
            if done_valid:
                done = (done_payload.tag, done_payload.resp)
        assert done == (3, AXIResp.OKAY)

    for tb in (loads, stores, store_data, results):
        sim.add_testbench(tb)
    sim.run()
    assert got == [w.tobytes() for w in original[word_offsets(load, beat)]]
    np.testing.assert_array_equal(memory[word_offsets(store, beat)], store_words)
    shared = set(slave.r_cycles) & set(slave.w_cycles)
    assert len(shared) >= 90
    assert max(slave.r_cycles[-1], slave.b_cycles[-1]) < 96 + 20
