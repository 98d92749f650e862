"""AXI4-Lite control and status registers of the accelerator.

Register map (32-bit registers, byte offsets; unmapped offsets read as 0 and ignore writes
(OKAY); an address that is not a multiple of 4 answers SLVERR and does nothing; byte strobes
apply to the read-write registers):

| offset | name        | access | contents                                                     |
|--------|-------------|--------|--------------------------------------------------------------|
| 0x00   | CTRL        | W      | bit 0 START: write 1 to start a run (ignored while busy)     |
| 0x04   | STATUS      | R      | bit 0 BUSY, bit 1 DONE (the last run ended; cleared by       |
|        |             |        | START), bit 2 ERROR (ERROR_CODE != NONE)                     |
| 0x08   | ERROR_CODE  | R      | bits 3:0: `hw.isa.ErrorCode` of the last run (0 = NONE)      |
| 0x0C   | ERROR_INDEX | R      | index of the instruction that stopped the last run          |
| 0x10   | PROG_ADDR   | RW     | DRAM byte address of the first instruction (32-byte aligned) |
| 0x14   | PROG_LEN    | RW     | program length in instructions                               |
| 0x18   | IRQ_ENABLE  | RW     | bit 0: raise `irq` when a run ends                           |
| 0x1C   | IRQ_STATUS  | R/W1C  | bit 0: a run ended; write 1 to clear                         |
| 0x20   | ID          | R      | 0x53595354 ("SYST")                                          |
| 0x24   | CONFIG_ID   | R      | first 32 bits of the config fingerprint (hw/config.py)      |
| 0x40   | CYCLES      | R      | 64-bit counters, low word at the offset, high word at +4:   |
| 0x48   | ARRAY_BUSY  | R      | reading the low word latches the high word, so read low     |
| 0x50   | STALL_LOAD  | R      | then high for a consistent 64-bit value. Cleared by START,   |
| 0x58   | STALL_STORE | R      | counted while BUSY: CYCLES every cycle, the others in the   |
| 0x60   | STALL_WEIGHT| R      | cycles their `events` input is high.                        |
| 0x68   | STALL_DEP   | R      |                                                              |

Start/done protocol: write PROG_ADDR, PROG_LEN (and IRQ_ENABLE), then CTRL.START = 1. `start`
pulses for one cycle and BUSY rises; the core runs and pulses `done` for one cycle with
`error` and `error_index` valid in that cycle; then BUSY falls, DONE and IRQ_STATUS rise and
`irq` follows IRQ_STATUS & IRQ_ENABLE until software clears IRQ_STATUS.

Ports: `bus` (In `AXI4LiteSignature(addr_bits=8)`), `start` (Out, pulse), `prog_addr`,
`prog_len` (Out 32, the register values), `busy` (Out), `done` (In, pulse), `error` (In
`ErrorCode`), `error_index` (In 32), `events` (In `PerfEvents`), `irq` (Out).

Latency: AWREADY and WREADY rise the cycle after AWVALID and WVALID are both high; `start`
pulses the cycle after that handshake, together with BVALID. ARREADY is high while no
read data waits; RVALID comes the cycle after the AR handshake. Every ready is a register
or depends only on registers (no combinational path from an AXI input to an output).
Throughput: one write per 3 cycles and one read per 2 cycles, independently.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.config import AcceleratorConfig
from hw.isa import ErrorCode

from .signatures import AXI4LiteSignature, AXIResp

__all__ = ["PerfEvents", "CSR", "Reg", "COUNTERS", "ID_VALUE"]

ID_VALUE = 0x53595354


class Reg:
    """Byte offsets of the registers (see the module docstring)."""
    CTRL = 0x00
    STATUS = 0x04
    ERROR_CODE = 0x08
    ERROR_INDEX = 0x0C
    PROG_ADDR = 0x10
    PROG_LEN = 0x14
    IRQ_ENABLE = 0x18
    IRQ_STATUS = 0x1C
    ID = 0x20
    CONFIG_ID = 0x24
    COUNTERS = 0x40


class PerfEvents(data.Struct):
    """What the core is doing this cycle, for the stall counters."""
    array_busy: 1        #: the systolic array does useful work
    load_wait: 1         #: compute waits for a load (input or parameter data not there)
    store_wait: 1        #: compute waits for a store to free the output buffer
    weight_load: 1       #: compute waits for weights to load
    dependency_wait: 1   #: a queue waits for a dependency token


#: Counter names in register order, each 8 bytes from Reg.COUNTERS.
COUNTERS = ("cycles", "array_busy", "load_wait", "store_wait", "weight_load", "dependency_wait")


class CSR(wiring.Component):
    """See the module docstring."""

    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config_id = int(config.fingerprint[:8], 16)
        super().__init__({
            "bus": In(AXI4LiteSignature(addr_bits=8)),
            "start": Out(1),
            "prog_addr": Out(32),
            "prog_len": Out(32),
            "busy": Out(1),
            "done": In(1),
            "error": In(ErrorCode),
            "error_index": In(32),
            "events": In(PerfEvents),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        done_flag = Signal()
        error_code = Signal(ErrorCode)
        error_index = Signal(32)
        irq_enable = Signal()
        irq_status = Signal()
        counters = [Signal(64, name=f"count_{name}") for name in COUNTERS]
        high_latch = [Signal(32, name=f"high_{name}") for name in COUNTERS]
        m.d.comb += self.irq.eq(irq_enable & irq_status)

        # ---- run control and counters ---------------------------------------------------
        with m.If(self.busy):
            m.d.sync += counters[0].eq(counters[0] + 1)
            for counter, name in zip(counters[1:], COUNTERS[1:]):
                with m.If(getattr(self.events, name)):
                    m.d.sync += counter.eq(counter + 1)
            with m.If(self.done):
                m.d.sync += [self.busy.eq(0), done_flag.eq(1), irq_status.eq(1),
                             error_code.eq(self.error), error_index.eq(self.error_index)]
        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), done_flag.eq(0), error_code.eq(ErrorCode.NONE),
                         error_index.eq(0)]
            m.d.sync += [counter.eq(0) for counter in counters]

        # ---- writes: take AW and W together, answer on B --------------------------------
        # AWREADY/WREADY are registered (AXI allows no combinational path from an input to an
        # output): they rise the cycle after both VALIDs are seen, for one cycle.
        write = Signal()
        with m.If(bus.awready):
            m.d.sync += [bus.awready.eq(0), bus.wready.eq(0)]
        with m.Elif(bus.awvalid & bus.wvalid & ~bus.bvalid):
            m.d.sync += [bus.awready.eq(1), bus.wready.eq(1)]
        m.d.comb += write.eq(bus.awready & bus.awvalid & bus.wvalid)
        with m.If(bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        mask = Cat(bit.replicate(8) for bit in bus.wstrb)

        def update(register):
            return (register & ~mask) | (bus.wdata & mask)

        # `start` is a flip-flop (the cycle after the CTRL write's handshake): the bus's
        # handshake and address decode do not reach the controller in the same cycle.
        start = Signal()
        m.d.sync += self.start.eq(start)
        with m.If(write & (bus.awaddr[:2] != 0)):
            m.d.sync += [bus.bvalid.eq(1), bus.bresp.eq(AXIResp.SLVERR)]
        with m.Elif(write):
            m.d.sync += [bus.bvalid.eq(1), bus.bresp.eq(AXIResp.OKAY)]
            with m.Switch(bus.awaddr[2:]):
                with m.Case(Reg.CTRL >> 2):
                    m.d.comb += start.eq(bus.wdata[0] & bus.wstrb[0] & ~self.busy)
                with m.Case(Reg.PROG_ADDR >> 2):
                    m.d.sync += self.prog_addr.eq(update(self.prog_addr))
                with m.Case(Reg.PROG_LEN >> 2):
                    m.d.sync += self.prog_len.eq(update(self.prog_len))
                with m.Case(Reg.IRQ_ENABLE >> 2):
                    with m.If(bus.wstrb[0]):
                        m.d.sync += irq_enable.eq(bus.wdata[0])
                with m.Case(Reg.IRQ_STATUS >> 2):
                    # A run that ends in the same cycle as the clear keeps its interrupt.
                    with m.If(bus.wstrb[0] & bus.wdata[0] & ~(self.busy & self.done)):
                        m.d.sync += irq_status.eq(0)

        # ---- reads: registered data, one outstanding read -------------------------------
        read = Signal()
        m.d.comb += [read.eq(bus.arvalid & ~bus.rvalid), bus.arready.eq(~bus.rvalid)]
        with m.If(bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(read & (bus.araddr[:2] != 0)):
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(0), bus.rresp.eq(AXIResp.SLVERR)]
        with m.Elif(read):
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(0), bus.rresp.eq(AXIResp.OKAY)]
            with m.Switch(bus.araddr[2:]):
                with m.Case(Reg.STATUS >> 2):
                    m.d.sync += bus.rdata.eq(Cat(self.busy, done_flag,
                                                 error_code != ErrorCode.NONE))
                with m.Case(Reg.ERROR_CODE >> 2):
                    m.d.sync += bus.rdata.eq(error_code)
                with m.Case(Reg.ERROR_INDEX >> 2):
                    m.d.sync += bus.rdata.eq(error_index)
                with m.Case(Reg.PROG_ADDR >> 2):
                    m.d.sync += bus.rdata.eq(self.prog_addr)
                with m.Case(Reg.PROG_LEN >> 2):
                    m.d.sync += bus.rdata.eq(self.prog_len)
                with m.Case(Reg.IRQ_ENABLE >> 2):
                    m.d.sync += bus.rdata.eq(irq_enable)
                with m.Case(Reg.IRQ_STATUS >> 2):
                    m.d.sync += bus.rdata.eq(irq_status)
                with m.Case(Reg.ID >> 2):
                    m.d.sync += bus.rdata.eq(ID_VALUE)
                with m.Case(Reg.CONFIG_ID >> 2):
                    m.d.sync += bus.rdata.eq(self.config_id)
                for n, (counter, high) in enumerate(zip(counters, high_latch)):
                    with m.Case((Reg.COUNTERS >> 2) + 2 * n):
                        m.d.sync += [bus.rdata.eq(counter[:32]), high.eq(counter[32:])]
                    with m.Case((Reg.COUNTERS >> 2) + 2 * n + 1):
                        m.d.sync += bus.rdata.eq(high)
        return m
