"""The accelerator top level: what an FPGA or SoC integrator instantiates.

Ports (Verilog names with `verilog_ports`; docs/integration.md has the full description):
  m_axi   AXI4 master to DRAM (instruction fetch, LOADs, STOREs; reads and writes independent)
  s_axil  AXI4-Lite slave: control and status registers (hw/axi/csr.py)
  irq     interrupt: a run ended (when enabled in IRQ_ENABLE)
  retire  trace: bit 0/1/2 strobes when the load/compute/store unit finishes an instruction
          (simulators use it for per-layer cycle counts; leave it open in a system)
  clk, rst (added by Amaranth: one clock domain, synchronous active-high reset)

Inside: the controller fetches instructions through the read DMA, checks them and dispatches
them to the load, compute and store units, ordered by dependency tokens. The load unit and
the instruction fetch share the read DMA (fetch first: its requests are short and the fetcher
only asks for what it can hold, so it never blocks loads); the store unit owns the write DMA,
so loads and stores overlap. Buffers are `amaranth.lib.memory` memories sized by the config.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from hw.axi.bursts import Descriptor, word_beats_log2
from hw.axi.csr import CSR, PerfEvents
from hw.axi.read_dma import ReadDMA
from hw.axi.signatures import AXI4LiteSignature, AXI4Signature, AXIResp, conventional_ports
from hw.axi.write_dma import WriteDMA
from hw.buffers.reader import BufferReader
from hw.compute.accumulator import acc_word_layout
from hw.compute.linear_addresses import LinearAddressGenerator
from hw.config import AcceleratorConfig, address_bits
from hw.controller.controller import Controller
from hw.isa import INSTR_BITS, INSTR_BYTES, Buffer
from hw.units.compute import ComputeUnit
from hw.units.load import LoadUnit
from hw.units.store import StoreUnit

__all__ = ["Top", "verilog_ports", "FETCH_TAG", "LOAD_TAG"]

FETCH_TAG, LOAD_TAG = 1, 0


def verilog_ports(top: "Top") -> list:
    """Ports with conventional names (`m_axi_arvalid`, `s_axil_awaddr`, `irq`)."""
    return conventional_ports(top)


class Top(wiring.Component):
    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config = config
        super().__init__({
            "m_axi": Out(AXI4Signature(data_bits=config.axi_data_bits,
                                       id_bits=config.axi_id_bits,
                                       addr_bits=config.axi_addr_bits)),
            "s_axil": In(AXI4LiteSignature(addr_bits=8)),
            "irq": Out(1),
            "retire": Out(3),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self.config
        lanes = 8 * c.word_bytes

        m.submodules.csr = csr = CSR(config=c)
        m.submodules.controller = ctrl = Controller(config=c)
        m.submodules.read_dma = rdma = ReadDMA(config=c)
        m.submodules.write_dma = wdma = WriteDMA(config=c)
        m.submodules.load = load = LoadUnit(config=c)
        m.submodules.store = store = StoreUnit(config=c)
        m.submodules.compute = compute = ComputeUnit(config=c)

        # ---- buses ------------------------------------------------------------------------
        connect(m, flipped(self.s_axil), csr.bus)
        for name in self.m_axi.signature.members:
            half = rdma.bus if name.startswith(("ar", "r")) else wdma.bus
            member = getattr(half, name)
            if self.m_axi.signature.members[name].flow == Out:
                m.d.comb += getattr(self.m_axi, name).eq(member)
            else:
                m.d.comb += member.eq(getattr(self.m_axi, name))
        m.d.comb += self.irq.eq(csr.irq)

        # ---- control ----------------------------------------------------------------------
        m.d.comb += [
            ctrl.start.eq(csr.start),
            ctrl.program_address.eq(csr.prog_addr),
            ctrl.program_length.eq(csr.prog_len),
            csr.done.eq(ctrl.finish),
            csr.error.eq(ctrl.error),
            csr.error_index.eq(ctrl.error_index),
        ]
        # A SLVERR/DECERR response stops the run with BUS_ERROR (hw/controller/controller.py):
        # read words tell fetch from LOAD by their tag, write errors come with the STORE's
        # completion. Both DMA engines still take every beat and B response of the bursts
        # they have issued, so the bus is left idle when the run ends.
        read_error = rdma.o.valid & rdma.o.ready & (rdma.o.payload.resp != AXIResp.OKAY)
        m.d.comb += [
            ctrl.fetch_bus_error.eq(read_error & (rdma.o.payload.tag == FETCH_TAG)),
            ctrl.load_bus_error.eq(read_error & (rdma.o.payload.tag != FETCH_TAG)),
            ctrl.store_bus_error.eq(wdma.done.valid & wdma.done.ready
                                    & (wdma.done.payload.resp != AXIResp.OKAY)),
        ]
        events = Signal(PerfEvents)
        m.d.comb += [
            events.array_busy.eq(compute.busy_array),
            events.weight_load.eq(compute.array_stall),
            events.load_wait.eq(ctrl.compute_waits_load),
            events.store_wait.eq(ctrl.compute_waits_store),
            events.dependency_wait.eq(ctrl.any_waits),
            csr.events.eq(events),
        ]
        connect(m, ctrl.load, load.instr)
        connect(m, ctrl.compute, compute.instr)
        connect(m, ctrl.store, store.instr)
        m.d.comb += [ctrl.load_done.eq(load.done), ctrl.compute_done.eq(compute.done),
                     ctrl.store_done.eq(store.done),
                     self.retire.eq(Cat(load.done, compute.done, store.done))]

        # ---- read DMA: instruction fetch first, then loads; words back by tag -------------
        fetch_desc = Signal(Descriptor)
        m.d.comb += [
            fetch_desc.dram_addr.eq(ctrl.fetch_req.payload.address),
            fetch_desc.size0.eq(ctrl.fetch_req.payload.words),
            fetch_desc.count1.eq(1), fetch_desc.count2.eq(1),
            fetch_desc.beats_log2.eq(word_beats_log2(c, INSTR_BYTES)),
            fetch_desc.tag.eq(FETCH_TAG),
        ]
        with m.If(ctrl.fetch_req.valid):
            m.d.comb += [rdma.i.valid.eq(1), rdma.i.payload.eq(fetch_desc),
                         ctrl.fetch_req.ready.eq(rdma.i.ready)]
        with m.Else():
            m.d.comb += [rdma.i.valid.eq(load.desc.valid), rdma.i.payload.eq(load.desc.payload),
                         load.desc.ready.eq(rdma.i.ready)]
        is_fetch = rdma.o.payload.tag == FETCH_TAG
        m.d.comb += [
            ctrl.fetch_words.valid.eq(rdma.o.valid & is_fetch),
            ctrl.fetch_words.payload.eq(rdma.o.payload.data[:INSTR_BITS]),
            load.words.valid.eq(rdma.o.valid & ~is_fetch),
            load.words.payload.eq(rdma.o.payload),
            rdma.o.ready.eq(Mux(is_fetch, ctrl.fetch_words.ready, load.words.ready)),
        ]

        # ---- buffers ----------------------------------------------------------------------
        m.submodules.ibuf = ibuf = memory.Memory(shape=lanes, depth=c.ibuf_words, init=[])
        m.submodules.wbuf = wbuf = memory.Memory(shape=lanes, depth=c.wbuf_words, init=[])
        m.submodules.pbuf = pbuf = memory.Memory(shape=8 * c.pbuf_word_bytes,
                                                 depth=c.pbuf_words, init=[])
        m.submodules.acc = acc = memory.Memory(shape=acc_word_layout(c), depth=c.acc_words,
                                               init=[])
        m.submodules.obuf = obuf = memory.Memory(shape=lanes, depth=c.obuf_words, init=[])

        connect(m, compute.ibuf_rd, ibuf.read_port())
        connect(m, compute.wbuf_rd, wbuf.read_port())
        connect(m, compute.pbuf_rd, pbuf.read_port())
        acc_w = acc.write_port()
        connect(m, compute.acc_wr, acc_w)
        connect(m, compute.acc_rd, acc.read_port(transparent_for=(acc_w,)))

        # Load unit writes: IBUF, WBUF and PBUF always take them; OBUF when the compute unit
        # is not writing it this cycle (compute never waits); LUT words go to the compute
        # unit's activation tables.
        # The compute unit's OBUF writes reach the memory one edge late, from registers, so
        # the load's OBUF arbitration (and the read DMA's RREADY behind it) is a register, not
        # the compute datapath's valid chain (mode -> pooling/post-processing valid -> writer).
        # Nothing reads a word that soon: `done` rises the cycle after the last write is
        # accepted, and the STORE that reads it starts after that done's token.
        wr = load.wr.payload
        ibuf_w, wbuf_w, pbuf_w, obuf_w = (ibuf.write_port(), wbuf.write_port(),
                                          pbuf.write_port(), obuf.write_port())
        compute_wr = memory.WritePort.Signature(addr_width=address_bits(c.obuf_words),
                                                shape=lanes).create()
        connect(m, compute.obuf_wr, compute_wr)
        compute_obuf = memory.WritePort.Signature(addr_width=address_bits(c.obuf_words),
                                                  shape=lanes).create(path=("compute_obuf",))
        m.d.sync += compute_obuf.en.eq(compute_wr.en)
        with m.If(compute_wr.en):
            m.d.sync += [compute_obuf.addr.eq(compute_wr.addr),
                         compute_obuf.data.eq(compute_wr.data)]
        to = {b: load.wr.valid & (wr.buffer == b) for b in Buffer}
        for port, buf in ((ibuf_w, Buffer.IBUF), (wbuf_w, Buffer.WBUF), (pbuf_w, Buffer.PBUF)):
            m.d.comb += [port.en.eq(to[buf]), port.addr.eq(wr.addr),
                         port.data.eq(wr.data[:port.data.shape().width])]
        m.d.comb += [
            obuf_w.en.eq(compute_obuf.en | to[Buffer.OBUF]),
            obuf_w.addr.eq(Mux(compute_obuf.en, compute_obuf.addr, wr.addr)),
            obuf_w.data.eq(Mux(compute_obuf.en, compute_obuf.data, wr.data[:lanes])),
            compute.lut.valid.eq(to[Buffer.LUT]),
            compute.lut.payload.addr.eq(wr.addr),
            compute.lut.payload.data.eq(wr.data[:lanes]),
            load.wr.ready.eq(Mux(wr.buffer == Buffer.LUT, compute.lut.ready,
                                 Mux(wr.buffer == Buffer.OBUF, ~compute_obuf.en, 1))),
        ]

        # ---- store unit: OBUF words into the write DMA ----------------------------------
        m.submodules.store_addresses = store_addresses = LinearAddressGenerator()
        m.submodules.store_reader = store_reader = BufferReader(
            addr_width=address_bits(c.obuf_words), shape=lanes)
        connect(m, store_reader.rd, obuf.read_port())
        connect(m, store.reads, store_addresses.cmd)
        m.d.comb += [
            store_reader.a.valid.eq(store_addresses.o.valid),
            store_reader.a.payload.addr.eq(store_addresses.o.payload.addr),
            store_addresses.o.ready.eq(store_reader.a.ready),
            store.words.valid.eq(store_reader.o.valid),
            store.words.payload.eq(store_reader.o.payload.data),
            store_reader.o.ready.eq(store.words.ready),
        ]
        connect(m, store.desc, wdma.i)
        connect(m, store.data, wdma.words)
        connect(m, wdma.done, store.completion)
        return m
