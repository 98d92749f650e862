"""A block-RAM DRAM stand-in: an AXI4 slave over on-chip memory, plus a byte port for a host.

Ports
-----
axi : In(AXI4Signature) — the accelerator's `m_axi` connects here. INCR bursts of full-width
    beats (the accelerator's DMA never issues narrower ones); reads and writes run at the same
    time (one read and one write port on the memory). Addresses wrap at `size_bytes`; the
    accelerator itself stops with DRAM_RANGE before it leaves `config.dram_bytes`. A burst that
    starts beyond `size_bytes` or off a beat boundary answers SLVERR (and writes nothing).
host_rd : In(stream of `HostRead`) / host_rd_data : Out(stream of 8 bits) — read one byte.
host_wr : In(stream of `HostWrite`) — write one byte.
    The host ports share the memory ports with AXI: a host request is first taken into a
    register (ready while it is empty), then served while that direction has no burst in
    progress (blocking AR/AW acceptance in its cycle), so a host should touch the DRAM only
    while the accelerator is idle. AR/AW acceptance depends on registers only, not on the
    host's valid. Host bytes beyond `size_bytes` read as 0 and ignore writes.

Latency and throughput: AR/AW accepted the cycle they are valid while idle; the first read
beat is valid 2 cycles after the AR handshake, then one beat per cycle under RREADY; one write
beat per cycle, BVALID the cycle after WLAST. Host read data 4 cycles after the request
(one in the request register, one in a word register after the read); a host write is in
memory 2 edges after its handshake.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.axi.signatures import AXI4Signature, AXIResp
from hw.config import AcceleratorConfig

__all__ = ["BlockRamDram", "HostRead", "HostWrite"]


class HostRead(data.Struct):
    addr: 32


class HostWrite(data.Struct):
    addr: 32
    data: 8


class BlockRamDram(wiring.Component):
    def __init__(self, *, config: AcceleratorConfig, size_bytes: int) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if (isinstance(size_bytes, bool) or not isinstance(size_bytes, int)
                or size_bytes < config.axi_data_bytes or size_bytes & (size_bytes - 1)):
            raise ValueError(f"size_bytes must be a power of two of at least one bus word "
                             f"({config.axi_data_bytes}), not {size_bytes!r}")
        self.config = config
        self.size_bytes = size_bytes
        super().__init__({
            "axi": In(AXI4Signature(data_bits=config.axi_data_bits, id_bits=config.axi_id_bits,
                                    addr_bits=config.axi_addr_bits)),
            "host_rd": In(stream.Signature(HostRead)),
            "host_rd_data": Out(stream.Signature(8)),
            "host_wr": In(stream.Signature(HostWrite)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self.config
        bus, beat = self.axi, c.axi_data_bytes
        shift = (beat - 1).bit_length()
        depth = self.size_bytes // beat
        m.submodules.mem = mem = memory.Memory(shape=8 * beat, depth=depth, init=[])
        rd = mem.read_port()
        wr = mem.write_port(granularity=8)
        size_bits = (self.size_bytes - 1).bit_length()
        word = lambda addr: addr[shift:size_bits]
        outside = lambda addr: addr[size_bits:] != 0
        misplaced = lambda addr: outside(addr) | (addr[:shift] != 0)

        # ---- reads ------------------------------------------------------------------------
        # The read port's enable defaults to 1: hold its data unless a state reads.
        m.d.comb += rd.en.eq(0)
        r_addr = Signal.like(rd.addr)
        r_left = Signal(8)
        r_id = Signal.like(bus.arid)
        r_error = Signal()
        host_byte = Signal(range(beat))
        # Host requests wait in registers, so that AR/AW acceptance reads no host valid.
        host_rd = Signal.like(self.host_rd.payload)
        host_rd_valid = Signal()
        m.d.comb += self.host_rd.ready.eq(~host_rd_valid)
        with m.If(self.host_rd.valid & self.host_rd.ready):
            m.d.sync += [host_rd.eq(self.host_rd.payload), host_rd_valid.eq(1)]
        host_outside = Signal()
        host_pending = Signal()
        # In BEAT the memory reads the next word every cycle, taken or not, so RREADY only
        # enables registers, never the memory's address or enable (it arrives late, through
        # the accelerator's ready chain). A beat not taken is replayed from `replay`.
        stalled = Signal()
        replay = Signal.like(bus.rdata)
        m.d.sync += [replay.eq(bus.rdata), stalled.eq(0)]
        # RVALID (the FSM in BEAT) and RLAST (r_left == 0) as flip-flops: they start the
        # read DMA's beat handshake, which reaches the LOAD unit and the controller.
        r_valid, r_last = Signal(), Signal()
        m.d.comb += [bus.rid.eq(r_id), bus.rvalid.eq(r_valid), bus.rlast.eq(r_last),
                     bus.rdata.eq(Mux(stalled, replay, rd.data)),
                     bus.rresp.as_value().eq(Mux(r_error, AXIResp.SLVERR, AXIResp.OKAY))]
        # The word read for the host is copied to a register before its byte is selected:
        # the block RAM's output (5.8 ns clock-to-out on the ECP5-85F without its output
        # register) into the byte select and the bridge's UART frame was the ULX3S's critical
        # path at ccf7948 (14.5 ns).
        host_word = Signal.like(rd.data)
        host_loaded = Signal()
        with m.If(host_pending & ~host_loaded):
            m.d.sync += [host_word.eq(rd.data), host_loaded.eq(1)]
        with m.If(host_loaded & self.host_rd_data.ready):
            m.d.sync += [host_pending.eq(0), host_loaded.eq(0)]
        m.d.comb += [self.host_rd_data.valid.eq(host_loaded),
                     self.host_rd_data.payload.eq(
                         Mux(host_outside, 0, host_word.word_select(host_byte, 8)))]
        with m.FSM(name="read"):
            with m.State("IDLE"):
                # One outstanding host byte at a time: its data waits in the read port.
                with m.If(host_rd_valid & ~host_pending):
                    m.d.comb += [rd.addr.eq(word(host_rd.addr)), rd.en.eq(1)]
                    m.d.sync += [host_byte.eq(host_rd.addr[:shift]),
                                 host_outside.eq(outside(host_rd.addr)),
                                 host_pending.eq(1), host_rd_valid.eq(0)]
                with m.Elif(~host_pending):
                    m.d.comb += bus.arready.eq(1)
                    with m.If(bus.arvalid):
                        m.d.sync += [r_addr.eq(word(bus.araddr)), r_left.eq(bus.arlen),
                                     r_last.eq(bus.arlen == 0),
                                     r_id.eq(bus.arid), r_error.eq(misplaced(bus.araddr))]
                        m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += [rd.addr.eq(r_addr), rd.en.eq(1)]
                m.d.sync += r_valid.eq(1)
                m.next = "BEAT"
            with m.State("BEAT"):
                # Read the next word now so a beat leaves every cycle.
                m.d.comb += [rd.addr.eq(r_addr + 1), rd.en.eq(1)]
                with m.If(bus.rready):
                    with m.If(r_last):
                        m.d.sync += r_valid.eq(0)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [r_addr.eq(r_addr + 1), r_left.eq(r_left - 1),
                                     r_last.eq(r_left == 1)]
                with m.Else():
                    m.d.sync += stalled.eq(1)

        # ---- writes -----------------------------------------------------------------------
        w_addr = Signal.like(wr.addr)
        w_id = Signal.like(bus.awid)
        w_error = Signal()
        host_wr = Signal.like(self.host_wr.payload)
        host_wr_valid = Signal()
        m.d.comb += self.host_wr.ready.eq(~host_wr_valid)
        with m.If(self.host_wr.valid & self.host_wr.ready):
            m.d.sync += [host_wr.eq(self.host_wr.payload), host_wr_valid.eq(1)]
        m.d.comb += [bus.bid.eq(w_id),
                     bus.bresp.as_value().eq(Mux(w_error, AXIResp.SLVERR, AXIResp.OKAY))]
        with m.FSM(name="write"):
            with m.State("IDLE"):
                with m.If(host_wr_valid):
                    m.d.comb += [wr.addr.eq(word(host_wr.addr)),
                                 wr.data.eq(host_wr.data.replicate(beat)),
                                 wr.en.eq(Mux(outside(host_wr.addr), 0,
                                              1 << host_wr.addr[:shift]))]
                    m.d.sync += host_wr_valid.eq(0)
                with m.Else():
                    m.d.comb += bus.awready.eq(1)
                    with m.If(bus.awvalid):
                        m.d.sync += [w_addr.eq(word(bus.awaddr)), w_id.eq(bus.awid),
                                     w_error.eq(misplaced(bus.awaddr))]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [bus.wready.eq(1), wr.addr.eq(w_addr), wr.data.eq(bus.wdata)]
                with m.If(bus.wvalid):
                    m.d.comb += wr.en.eq(Mux(w_error, 0, bus.wstrb))
                    m.d.sync += w_addr.eq(w_addr + 1)
                    with m.If(bus.wlast):
                        m.next = "RESP"
            with m.State("RESP"):
                m.d.comb += bus.bvalid.eq(1)
                with m.If(bus.bready):
                    m.next = "IDLE"
        return m
