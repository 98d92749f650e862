"""A UART command bridge: a host reads and writes DRAM bytes and the accelerator's CSRs.

Protocol (bytes on the UART; multi-byte fields little-endian):

| host sends                      | board answers                          |
|---------------------------------|----------------------------------------|
| 0x01 addr[4] n[2] data[n]       | 0x01 once the n bytes are in DRAM       |
| 0x02 addr[4] n[2]               | the n DRAM bytes from addr              |
| 0x03 reg[1] value[4]            | the AXI write response (0 = OKAY)       |
| 0x04 reg[1]                     | the register's 4 bytes                  |
| any other byte                  | 0xEE (resynchronise: the next byte is a command) |

`reg` is a CSR byte offset (hw/axi/csr.py). The usual session: write the program and data
with 0x01, write PROG_ADDR and PROG_LEN, write 1 to CTRL, poll STATUS (0x04 0x04) until DONE,
then read results with 0x02 (sim/board_host.py does this).

Ports: `rx` (In stream of bytes from the UART receiver), `tx` (Out stream to the
transmitter), `dram_rd` / `dram_rd_data` / `dram_wr` (the host ports of
hw/boards/dram.py), `csr` (Out AXI4-Lite master, 8-bit addresses).
Throughput: one DRAM byte per UART byte time; the bridge never holds the UART back longer
than a few cycles per byte.
"""

from amaranth import Module, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.axi.signatures import AXI4LiteSignature

from .dram import HostRead, HostWrite

__all__ = ["UartBridge", "Command", "UNKNOWN_COMMAND"]

UNKNOWN_COMMAND = 0xEE


class Command(enum.Enum, shape=8):
    WRITE_DRAM = 0x01
    READ_DRAM = 0x02
    WRITE_CSR = 0x03
    READ_CSR = 0x04


#: Header bytes after the command byte.
HEADER_BYTES = {Command.WRITE_DRAM: 6, Command.READ_DRAM: 6, Command.WRITE_CSR: 5,
                Command.READ_CSR: 1}


class UartBridge(wiring.Component):
    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))
    dram_rd: Out(stream.Signature(HostRead))
    dram_rd_data: In(stream.Signature(8))
    dram_wr: Out(stream.Signature(HostWrite))
    csr: Out(AXI4LiteSignature(addr_bits=8))

    def elaborate(self, platform) -> Module:
        m = Module()
        cmd = Signal(Command, init=Command.WRITE_DRAM)
        header = Signal(48)
        index = Signal(range(7))
        needed = Signal(range(7))
        addr = header[:32]
        count = header[32:48]
        reply = Signal(32)
        reply_left = Signal(range(5))
        aw_done = Signal()
        w_done = Signal()
        csr = self.csr
        m.d.comb += [csr.wstrb.eq(0xF), csr.awaddr.eq(header[:8]), csr.araddr.eq(header[:8]),
                     csr.wdata.eq(header[8:40]),
                     self.dram_rd.payload.addr.eq(addr),
                     self.dram_wr.payload.addr.eq(addr),
                     self.dram_wr.payload.data.eq(self.rx.payload),
                     self.tx.payload.eq(reply[:8])]

        with m.FSM():
            with m.State("COMMAND"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += [cmd.as_value().eq(self.rx.payload), index.eq(0), header.eq(0)]
                    with m.Switch(self.rx.payload):
                        for command, length in HEADER_BYTES.items():
                            with m.Case(command):
                                m.d.sync += needed.eq(length)
                                m.next = "HEADER"
                        with m.Default():
                            m.d.sync += [reply.eq(UNKNOWN_COMMAND), reply_left.eq(1)]
                            m.next = "REPLY"
            with m.State("HEADER"):
                with m.If(index == needed):
                    with m.Switch(cmd):
                        with m.Case(Command.WRITE_DRAM):
                            m.d.sync += [reply.eq(Command.WRITE_DRAM), reply_left.eq(1)]
                            m.next = "DRAM_WRITE"
                        with m.Case(Command.READ_DRAM):
                            m.next = "DRAM_READ"
                        with m.Case(Command.WRITE_CSR):
                            m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                            m.next = "CSR_WRITE"
                        with m.Case(Command.READ_CSR):
                            m.next = "CSR_READ"
                with m.Else():
                    m.d.comb += self.rx.ready.eq(1)
                    with m.If(self.rx.valid):
                        m.d.sync += [header.word_select(index, 8).eq(self.rx.payload),
                                     index.eq(index + 1)]
            with m.State("DRAM_WRITE"):
                with m.If(count == 0):
                    m.next = "REPLY"
                with m.Else():
                    m.d.comb += [self.dram_wr.valid.eq(self.rx.valid),
                                 self.rx.ready.eq(self.dram_wr.ready)]
                    with m.If(self.rx.valid & self.dram_wr.ready):
                        m.d.sync += [addr.eq(addr + 1), count.eq(count - 1)]
            with m.State("DRAM_READ"):
                with m.If(count == 0):
                    m.next = "COMMAND"
                with m.Else():
                    m.d.comb += self.dram_rd.valid.eq(1)
                    with m.If(self.dram_rd.ready):
                        m.next = "DRAM_READ_DATA"
            with m.State("DRAM_READ_DATA"):
                m.d.comb += [self.tx.valid.eq(self.dram_rd_data.valid),
                             self.tx.payload.eq(self.dram_rd_data.payload),
                             self.dram_rd_data.ready.eq(self.tx.ready)]
                with m.If(self.dram_rd_data.valid & self.tx.ready):
                    m.d.sync += [addr.eq(addr + 1), count.eq(count - 1)]
                    m.next = "DRAM_READ"
            with m.State("CSR_WRITE"):
                m.d.comb += [csr.awvalid.eq(~aw_done), csr.wvalid.eq(~w_done),
                             csr.bready.eq(aw_done & w_done)]
                with m.If(csr.awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(csr.wready):
                    m.d.sync += w_done.eq(1)
                with m.If(aw_done & w_done & csr.bvalid):
                    m.d.sync += [reply.eq(csr.bresp.as_value()), reply_left.eq(1)]
                    m.next = "REPLY"
            with m.State("CSR_READ"):
                m.d.comb += csr.arvalid.eq(1)
                with m.If(csr.arready):
                    m.next = "CSR_READ_DATA"
            with m.State("CSR_READ_DATA"):
                m.d.comb += csr.rready.eq(1)
                with m.If(csr.rvalid):
                    m.d.sync += [reply.eq(csr.rdata), reply_left.eq(4)]
                    m.next = "REPLY"
            with m.State("REPLY"):
                m.d.comb += self.tx.valid.eq(1)
                with m.If(self.tx.ready):
                    m.d.sync += [reply.eq(reply >> 8), reply_left.eq(reply_left - 1)]
                    with m.If(reply_left == 1):
                        m.next = "COMMAND"
        return m
