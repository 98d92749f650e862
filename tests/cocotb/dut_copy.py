"""A test-only DMA copier built from the accelerator's real bus blocks, to prove the cocotb
bench infrastructure (tests/cocotb/runner.py, tb.py) on real RTL before the top level exists.

`CopyDUT` has the top level's bus interfaces: the CSR block (hw/axi/csr.py) on `s_axil`,
the read and write DMA engines (hw/axi/read_dma.py, write_dma.py) sharing `m_axi`, and the
CSR's `irq`. Software starts it like the accelerator: PROG_ADDR = the DRAM address of a list
of 32-byte copy commands (32-byte aligned, like instructions), PROG_LEN = how many, then
CTRL.START; `irq` rises (with IRQ_ENABLE set) when the last copy is in DRAM.

A copy command, eight little-endian 32-bit fields (`CopyCommand`):
`src`, `dst` (byte addresses, multiples of the bus width), `row_bytes` (a non-zero multiple of
the bus width, at most 65,535 beats), `rows` (1 to 65,535), `src_stride`, `dst_stride`
(bytes from one row to the next, multiples of the bus width), then two reserved words.
Row r copies `row_bytes` from `src + r*src_stride` to `dst + r*dst_stride`. A command that
breaks these rules stops the run with ERROR_CODE ILLEGAL_FIELD (sizes) or MISALIGNED
(addresses, strides), and ERROR_INDEX = the command's index; a non-OKAY AXI response stops it
with DRAM_RANGE (the ISA has no bus-error code; this DUT is test-only).

Ports: `s_axil` (In `AXI4LiteSignature(addr_bits=8)`), `m_axi` (Out `AXI4Signature` of the
config's bus), `irq` (Out); Amaranth adds `clk` and `rst` (synchronous, active high).

Timing: commands run one after another; each is fetched (one 32-byte read), then its read
and write descriptors are issued, and the data streams from the read engine straight into
the write engine, so a copy of N beats takes about N + 2 x DRAM latency + 8 cycles. There
is no overlap between commands: this block exists to exercise the buses, not to be fast.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.axi.bursts import Descriptor, word_beats_log2
from hw.axi.csr import CSR
from hw.axi.read_dma import ReadDMA
from hw.axi.signatures import AXI4LiteSignature, AXI4Signature, AXIResp, connect_channels
from hw.axi.write_dma import WriteDMA
from hw.config import AcceleratorConfig
from hw.isa import ErrorCode

__all__ = ["CopyCommand", "CopyDUT", "COMMAND_BYTES"]

#: One copy command, the size of one instruction.
COMMAND_BYTES = 32


class CopyCommand(data.Struct):
    """The 32-byte copy command in DRAM (little-endian: `src` is bytes 0-3)."""
    src: 32
    dst: 32
    row_bytes: 32
    rows: 32
    src_stride: 32
    dst_stride: 32
    reserved: 64


class CopyDUT(wiring.Component):
    """See the module docstring."""

    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if config.axi_data_bytes > COMMAND_BYTES:
            raise ValueError(f"CopyDUT fetches {COMMAND_BYTES}-byte commands, so the bus must be "
                             f"at most {8 * COMMAND_BYTES} bits, not {config.axi_data_bits}")
        self.config = config
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_bits=8)),
            "m_axi": Out(AXI4Signature(data_bits=config.axi_data_bits,
                                       id_bits=config.axi_id_bits,
                                       addr_bits=config.axi_addr_bits)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self.config
        # 32-byte words: one command is one word; copy data moves as one-beat words.
        m.submodules.csr = csr = CSR(config=config)
        m.submodules.reader = reader = ReadDMA(config=config, max_word_bytes=COMMAND_BYTES)
        m.submodules.writer = writer = WriteDMA(config=config, max_word_bytes=COMMAND_BYTES)
        wiring.connect(m, wiring.flipped(self.s_axil), csr.bus)
        connect_channels(m, self.m_axi, reader.bus, writer.bus)
        m.d.comb += self.irq.eq(csr.irq)

        bus_bytes = config.axi_data_bytes
        size_log2 = bus_bytes.bit_length() - 1
        command = Signal(CopyCommand)
        command_addr = Signal(32)
        commands_left = Signal(32)
        index = Signal(32)
        error = Signal(ErrorCode)
        bus_error = Signal()

        def misaligned(value):
            return value[:size_log2] != 0

        row_beats = command.row_bytes[size_log2:]
        bad_size = (command.rows == 0) | (command.rows[16:] != 0) | (row_beats == 0) \
            | (row_beats[16:] != 0) | misaligned(command.row_bytes)
        bad_align = misaligned(command.src) | misaligned(command.dst) \
            | misaligned(command.src_stride) | misaligned(command.dst_stride)

        # Every field of every descriptor is driven outside the FSM, so that no payload bit is
        # left to a process default (Verilator lint: UNDRIVEN, ALWNEVER).
        fetch, load, store = (Signal(Descriptor, name=name) for name in ("fetch", "load", "store"))
        for descriptor, addr, size0, count1, stride1, beats_log2 in [
                (fetch, command_addr, 1, 1, 0, word_beats_log2(config, COMMAND_BYTES)),
                (load, command.src, row_beats, command.rows, command.src_stride, 0),
                (store, command.dst, row_beats, command.rows, command.dst_stride, 0)]:
            m.d.comb += [descriptor.dram_addr.eq(addr), descriptor.size0.eq(size0),
                         descriptor.count1.eq(count1), descriptor.stride1.eq(stride1),
                         descriptor.count2.eq(1), descriptor.stride2.eq(0),
                         descriptor.beats_log2.eq(beats_log2), descriptor.tag.eq(0)]

        m.d.comb += [csr.error.eq(error), csr.error_index.eq(index)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(csr.start):
                    m.d.sync += [command_addr.eq(csr.prog_addr), commands_left.eq(csr.prog_len),
                                 index.eq(0), error.eq(ErrorCode.NONE), bus_error.eq(0)]
                    with m.If(csr.prog_len == 0):
                        m.next = "FINISH"
                    with m.Elif(csr.prog_addr[:COMMAND_BYTES.bit_length() - 1] != 0):
                        m.d.sync += error.eq(ErrorCode.MISALIGNED)
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [reader.i.valid.eq(1), reader.i.payload.eq(fetch)]
                with m.If(reader.i.ready):
                    m.next = "DECODE"
            with m.State("DECODE"):
                m.d.comb += reader.o.ready.eq(1)
                with m.If(reader.o.valid):
                    m.d.sync += command.eq(reader.o.payload.data)
                    with m.If(reader.o.payload.resp != AXIResp.OKAY):
                        m.d.sync += error.eq(ErrorCode.DRAM_RANGE)
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(bad_size):
                    m.d.sync += error.eq(ErrorCode.ILLEGAL_FIELD)
                    m.next = "FINISH"
                with m.Elif(bad_align):
                    m.d.sync += error.eq(ErrorCode.MISALIGNED)
                    m.next = "FINISH"
                with m.Else():
                    m.next = "ISSUE_READ"
            for state, engine, descriptor, after in [("ISSUE_READ", reader, load, "ISSUE_WRITE"),
                                                     ("ISSUE_WRITE", writer, store, "COPY")]:
                with m.State(state):
                    m.d.comb += [engine.i.valid.eq(1), engine.i.payload.eq(descriptor)]
                    with m.If(engine.i.ready):
                        m.next = after
            with m.State("COPY"):
                m.d.comb += [
                    writer.words.valid.eq(reader.o.valid),
                    writer.words.payload.eq(reader.o.payload.data),
                    reader.o.ready.eq(writer.words.ready),
                    writer.done.ready.eq(1),
                ]
                with m.If(reader.o.valid & reader.o.ready
                          & (reader.o.payload.resp != AXIResp.OKAY)):
                    m.d.sync += bus_error.eq(1)
                with m.If(writer.done.valid):
                    m.d.sync += [command_addr.eq(command_addr + COMMAND_BYTES),
                                 commands_left.eq(commands_left - 1)]
                    with m.If(bus_error | (writer.done.payload.resp != AXIResp.OKAY)):
                        m.d.sync += error.eq(ErrorCode.DRAM_RANGE)
                        m.next = "FINISH"
                    with m.Elif(commands_left == 1):
                        m.next = "FINISH"
                    with m.Else():
                        m.d.sync += index.eq(index + 1)
                        m.next = "FETCH"
            with m.State("FINISH"):
                m.d.comb += csr.done.eq(1)
                m.next = "IDLE"
        return m
