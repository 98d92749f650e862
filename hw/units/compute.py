"""The compute unit: executes CONV, POOL and ADD instructions on the datapath blocks.

Datapath routes (selected by the mode, held one-hot in `route`; it changes only when every issued
instruction is done):

  CONV         IBUF tile reader -> window generator -> systolic core -> accumulator
               -> post-processing -> output-buffer writer      (weights: WBUF reader -> core)
  POOL window  IBUF tile reader -> window generator -> pooling unit -> output-buffer writer
  POOL global  IBUF tile reader -> pooling unit -> output-buffer writer
  ADD          IBUF pair reader -> element-wise unit -> output-buffer writer

An instruction is *issued* by sending each block on its route a command; consecutive
instructions of one mode stream through the blocks back to back (a CONV's weights load into
the other bank while the previous CONV computes, hw/systolic/core.py). An instruction is
*done* when its last result is written (output buffer, or the accumulator buffer for an
intermediate CONV pass); `done` strobes once per instruction, in issue order.

Ports:
  instr   In(stream of 256-bit CONV/POOL/ADD words)   from the compute queue
  done    Out(1)                                       strobe per finished instruction
  ibuf_rd, wbuf_rd, pbuf_rd, acc_rd, acc_wr            buffer ports (acc_rd transparent)
  obuf_wr drives a WritePort of the output buffer      (the top level gives it priority
                                                       over LOADs into OBUF: it never waits)
  lut     In(stream of LUT word writes)                from LOADs into the LUT buffer
  busy_array  Out(1)   a chunk entered the array this cycle (useful work)
  array_stall Out(1)   a chunk waits at the array (weights still loading, or results backed up)
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from hw.activation import lut_write_layout
from hw.buffers.reader import BufferReader, RegisteredBufferReader
from hw.compute.bit_fifo import BitFIFO
from hw.compute.accumulator import Accumulator, acc_word_layout
from hw.compute.buffer_writer import BufferWriter
from hw.compute.linear_addresses import LinearAddressGenerator
from hw.compute.tile_addresses import TileAddressGenerator
from hw.config import AcceleratorConfig, address_bits
from hw.eltwise import EltwiseAdd
from hw.isa import INSTR_BITS, AddLayout, ConvLayout, Opcode, PoolKind, PoolLayout
from hw.pooling import PoolingUnit
from hw.postprocess import PostProcess
from hw.skid import SkidBuffer
from hw.systolic.core import SystolicCore
from hw.window.generator import WindowGenerator

__all__ = ["ComputeUnit", "Mode"]


class Mode(enum.Enum, shape=2):
    CONV = 0
    POOL_WINDOW = 1
    POOL_GLOBAL = 2
    ADD = 3


def _assign(target, value) -> list:
    """Statements assigning a (possibly nested) dict of values to a struct view's fields."""
    if isinstance(value, dict):
        return [stmt for key, v in value.items() for stmt in _assign(target[key], v)]
    return [target.eq(value)]


def _view(layout, word):
    return data.View(layout, word[:data.Layout.cast(layout).size])


class ComputeUnit(wiring.Component):
    # The IBUF reader; the cycle model (sim/perf/compute.py) reads its LATENCY.
    IBUF_READER = RegisteredBufferReader

    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config = c = config
        self.core = SystolicCore(config=c)
        self.acc_layout = acc_word_layout(c)
        super().__init__({
            "instr": In(stream.Signature(INSTR_BITS)),
            "done": Out(1),
            "ibuf_rd": In(memory.ReadPort.Signature(addr_width=address_bits(c.ibuf_words),
                                                    shape=8 * c.word_bytes)),
            "wbuf_rd": In(memory.ReadPort.Signature(addr_width=address_bits(c.wbuf_words),
                                                    shape=8 * c.word_bytes)),
            "pbuf_rd": In(memory.ReadPort.Signature(addr_width=address_bits(c.pbuf_words),
                                                    shape=8 * c.pbuf_word_bytes)),
            "acc_rd": In(memory.ReadPort.Signature(addr_width=address_bits(c.acc_words),
                                                   shape=self.acc_layout)),
            "acc_wr": In(memory.WritePort.Signature(addr_width=address_bits(c.acc_words),
                                                    shape=self.acc_layout)),
            "obuf_wr": In(memory.WritePort.Signature(addr_width=address_bits(c.obuf_words),
                                                     shape=8 * c.word_bytes)),
            "lut": In(stream.Signature(lut_write_layout(c.word_bytes))),
            "busy_array": Out(1),
            "array_stall": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self.config
        lanes_bits = 8 * c.word_bytes

        # ---- blocks ---------------------------------------------------------------------
        m.submodules.core = core = self.core
        m.submodules.tiles = tiles = TileAddressGenerator()
        # The IBUF words go to the line-buffer write mux, the pooling adders and the
        # element-wise multipliers: registered after the block RAM (RegisteredBufferReader).
        m.submodules.ibuf_reader = ibuf_reader = self.IBUF_READER(
            addr_width=address_bits(c.ibuf_words), shape=lanes_bits, tag_shape=2)
        m.submodules.window = window = WindowGenerator(config=c)
        m.submodules.wload = wload = LinearAddressGenerator(tag_shape=1)
        m.submodules.wbuf_reader = wbuf_reader = BufferReader(
            addr_width=address_bits(c.wbuf_words), shape=lanes_bits, tag_shape=2)
        m.submodules.accumulator = accumulator = Accumulator(config=c)
        m.submodules.postprocess = postprocess = PostProcess(config=c)
        m.submodules.pooling = pooling = PoolingUnit(config=c)
        m.submodules.eltwise = eltwise = EltwiseAdd(config=c)
        m.submodules.writer = writer = BufferWriter(addr_width=address_bits(c.obuf_words),
                                                    shape=lanes_bits)

        connect(m, flipped(self.ibuf_rd), ibuf_reader.rd)
        connect(m, flipped(self.wbuf_rd), wbuf_reader.rd)
        connect(m, flipped(self.acc_rd), accumulator.rd)
        connect(m, flipped(self.acc_wr), accumulator.wr)
        connect(m, flipped(self.obuf_wr), writer.wr)
        m.d.comb += self.pbuf_rd.en.eq(0)

        # LUT words go to both activation tables.
        m.d.comb += [
            postprocess.lut.payload.eq(self.lut.payload),
            eltwise.lut.payload.eq(self.lut.payload),
        ]
        lut_sent = Signal(2)
        both = (lut_sent[0] | postprocess.lut.ready) & (lut_sent[1] | eltwise.lut.ready)
        m.d.comb += [
            postprocess.lut.valid.eq(self.lut.valid & ~lut_sent[0]),
            eltwise.lut.valid.eq(self.lut.valid & ~lut_sent[1]),
            self.lut.ready.eq(both),
        ]
        with m.If(self.lut.valid):
            m.d.sync += lut_sent.eq(Mux(both, 0, lut_sent | Cat(postprocess.lut.ready,
                                                                 eltwise.lut.ready)))

        # ---- weights: WBUF words into the core, tagged with their bank --------------------
        m.d.comb += [
            wbuf_reader.a.valid.eq(wload.o.valid),
            wbuf_reader.a.payload.addr.eq(wload.o.payload.addr),
            wbuf_reader.a.payload.tag.eq(Cat(wload.o.payload.tag, wload.o.payload.last)),
            wload.o.ready.eq(wbuf_reader.a.ready),
            core.w_in.valid.eq(wbuf_reader.o.valid),
            core.w_in.payload.data.eq(wbuf_reader.o.payload.data),
            core.w_in.payload.bank.eq(wbuf_reader.o.payload.tag[0]),
            core.w_in.payload.last.eq(wbuf_reader.o.payload.tag[1]),
            wbuf_reader.o.ready.eq(core.w_in.ready),
        ]

        # ---- routing by mode -------------------------------------------------------------
        # The mode, one-hot (bit `Mode.X.value` set in mode X): the handshakes below are
        # AND-OR terms of these flags and registered block signals, with no decode in front.
        route = Signal(len(Mode), init=1 << Mode.CONV.value)
        is_conv, is_pool_window, is_pool_global, is_add = (route[mode_.value] for mode_ in Mode)
        # ADD operand pairs: the reader alternates a and b; `pair_a` holds a.
        add_addr = Signal(16)
        add_b_addr = Signal(16)
        add_phase = Signal()
        add_left = Signal(17)
        pair_a = Signal(lanes_bits)

        # IBUF reader input: tile addresses, or the ADD pair addresses.
        with m.If(is_add):
            m.d.comb += [
                ibuf_reader.a.valid.eq(add_left != 0),
                ibuf_reader.a.payload.addr.eq(Mux(add_phase, add_b_addr, add_addr)),
                ibuf_reader.a.payload.tag.eq(Cat(add_phase, (add_left == 1) & add_phase)),
            ]
            with m.If(ibuf_reader.a.valid & ibuf_reader.a.ready):
                m.d.sync += add_phase.eq(~add_phase)
                with m.If(add_phase):
                    m.d.sync += [add_addr.eq(add_addr + 1), add_b_addr.eq(add_b_addr + 1),
                                 add_left.eq(add_left - 1)]
        with m.Else():
            m.d.comb += [
                ibuf_reader.a.valid.eq(tiles.o.valid),
                ibuf_reader.a.payload.addr.eq(tiles.o.payload.addr),
                ibuf_reader.a.payload.tag.eq(Cat(tiles.o.payload.last, 0)),
                tiles.o.ready.eq(ibuf_reader.a.ready),
            ]

        # Global pooling: the plane's words are the taps of one window (one pass per plane).
        taps_layout = data.StructLayout({"data": lanes_bits, "inside": 1, "last": 1, "end": 1})
        global_taps, window_taps = Signal(taps_layout), Signal(taps_layout)
        m.d.comb += [global_taps.data.eq(ibuf_reader.o.payload.data), global_taps.inside.eq(1),
                     global_taps.last.eq(ibuf_reader.o.payload.tag[0]),
                     global_taps.end.eq(ibuf_reader.o.payload.tag[0])]

        # The bank of each CONV pass in the window generator, in pass order (head and level
        # in registers: they gate the window generator's o.ready).
        m.submodules.banks = banks = BitFIFO(depth=4)

        # Routes: every valid and ready below is an AND-OR of the one-hot route flags and
        # block signals; payloads with one source are connected whatever the mode (their
        # valid decides), the others are chosen by the flags.
        pooling_route = is_pool_window | is_pool_global
        is_b = ibuf_reader.o.payload.tag[0]      # ADD: the pair's second operand
        # The window generator's output through a skid buffer: its `ready` (a flip-flop) is
        # what the generator's pipeline enable sees, not the AND-OR of the array's and the
        # pooling unit's readiness below (the longest paths of both ECP5 boards).
        m.submodules.window_skid = skid = SkidBuffer(window.o.payload.shape())
        connect(m, window.o, skid.i)
        win = skid.o
        m.d.comb += [
            window.i.valid.eq((is_conv | is_pool_window) & ibuf_reader.o.valid),
            window.i.payload.eq(ibuf_reader.o.payload.data),
            ibuf_reader.o.ready.eq(((is_conv | is_pool_window) & window.i.ready)
                                   | (is_pool_global & pooling.i.ready)
                                   | (is_add & (~is_b | eltwise.i.ready))),
            core.i.valid.eq(is_conv & win.valid & banks.r_rdy),
            core.i.payload.data.eq(win.payload.data),
            core.i.payload.context.eq(win.payload.d),
            core.i.payload.bank.eq(banks.r_data),
            core.i.payload.last.eq(win.payload.last),
            core.i.payload.release.eq(win.payload.end),
            banks.r_en.eq(is_conv & win.valid & core.i.ready & win.payload.end),
            win.ready.eq((is_conv & core.i.ready & banks.r_rdy)
                         | (is_pool_window & pooling.i.ready)),
            pooling.i.valid.eq((is_pool_window & win.valid)
                               | (is_pool_global & ibuf_reader.o.valid)),
            window_taps.data.eq(win.payload.data),
            window_taps.inside.eq(win.payload.inside),
            window_taps.last.eq(win.payload.last), window_taps.end.eq(win.payload.end),
            pooling.i.payload.eq(Mux(is_pool_global, global_taps, window_taps)),
            eltwise.i.valid.eq(is_add & ibuf_reader.o.valid & is_b),
            eltwise.i.payload.eq(Cat(pair_a, ibuf_reader.o.payload.data)),
            writer.i.valid.eq((is_conv & postprocess.o.valid)
                              | (pooling_route & pooling.o.valid)
                              | (is_add & eltwise.o.valid)),
            writer.i.payload.eq(Mux(is_conv, postprocess.o.payload,
                                    Mux(is_add, eltwise.o.payload, pooling.o.payload))),
            postprocess.o.ready.eq(is_conv & writer.i.ready),
            pooling.o.ready.eq(pooling_route & writer.i.ready),
            eltwise.o.ready.eq(is_add & writer.i.ready),
        ]
        with m.If(is_add & ibuf_reader.o.valid & ~is_b):
            m.d.sync += pair_a.eq(ibuf_reader.o.payload.data)

        # Core sums always go through the accumulator; output passes on to post-processing.
        connect(m, core.o, accumulator.i)
        connect(m, accumulator.o, postprocess.i)
        m.d.comb += [self.busy_array.eq(core.i.valid & core.i.ready),
                     self.array_stall.eq(core.i.valid & ~core.i.ready)]

        # ---- completion: done in issue order ------------------------------------------------
        # Each issued instruction finishes either at the writer or at the accumulator.
        # (BitFIFO: its w_rdy gates the instruction's acceptance, its r_rdy and head the
        # done strobe, all from registers.)
        m.submodules.order = order = BitFIFO(depth=8)
        writer_events, acc_events = Signal(4), Signal(4)
        head_is_acc = order.r_data
        finish = order.r_rdy & Mux(head_is_acc, (acc_events != 0) | accumulator.done,
                                   (writer_events != 0) | writer.done)
        m.d.comb += order.r_en.eq(finish)
        m.d.sync += [
            self.done.eq(finish),
            writer_events.eq(writer_events + writer.done - (finish & ~head_is_acc)),
            acc_events.eq(acc_events + accumulator.done - (finish & head_is_acc)),
        ]
        idle = ~order.r_rdy

        # ---- issue ---------------------------------------------------------------------------
        word = self.instr.payload
        opcode = _view(ConvLayout, word).header.opcode
        conv = Signal(ConvLayout)
        pool = Signal(PoolLayout)
        add = Signal(AddLayout)
        bank = Signal()
        pixels = Signal(20)
        group = Signal(10)
        last_group = Signal()   # group == pool.groups - 1, a flip-flop (set with `group`)
        plane_in = Signal(20)
        plane_base = Signal(16)
        plane_words = Signal(20)
        pool_low, pool_high = Signal(20), Signal(20)   # by the low and high half of groups
        pool_count = Signal(20)                        # their sum: the POOL's output words
        groups_half = len(pool.groups) // 2
        # Products of instruction fields, registered in the cycles before the commands are
        # offered (a multiplier in front of a command payload reached the window generator's
        # pass-load registers: the 25F's critical path at 132b4c9, 11.3 ns).
        weight_words = Signal((conv.chunk_count * c.columns).shape())
        # The window generator's cmd payload, one register for CONV and POOL set before the
        # cmd is offered (CONV_PARAMS, POOL_COUNT): as the states' payloads, FSM state ->
        # payload mux -> the generator's stage-1 products was the 25F's critical path at
        # c60179a (9.5 ns). A cmd is only replaced after it was taken (states change on
        # `all_sent`).
        window_payload = Signal.like(window.cmd.payload)
        pool_taps = Signal((pool.kernel * pool.kernel).shape())
        # One flip-flop per block command: set when the FSM enters a state that sends it,
        # cleared when the block takes it. It is the command's `valid` (no state decode in
        # front of the blocks' command transfers); the payloads are the sending state's
        # (tiles, writer: several states send them) or driven in every state (below).
        ports = {"tiles": tiles.cmd, "window": window.cmd, "wload": wload.cmd,
                 "acc": accumulator.cmd, "post": postprocess.cmd, "writer": writer.cmd,
                 "pool": pooling.cmd, "eltwise": eltwise.cmd}
        bit = {name: index for index, name in enumerate(ports)}
        offer = Signal(len(ports))
        for name, port in ports.items():
            m.d.comb += port.valid.eq(offer[bit[name]])
            with m.If(port.valid & port.ready):
                m.d.sync += offer[bit[name]].eq(0)
        # High from the cycle after the state's last command was taken: a block's `ready`
        # (the writer's depends on its input stream) reaches one flip-flop, not the FSM.
        all_sent = Signal()
        m.d.comb += all_sent.eq(offer == 0)

        def mask(*names) -> int:
            return sum(1 << bit[name] for name in names)

        m.d.comb += window.cmd.payload.eq(window_payload)
        # Commands only one state sends carry their payload in every state (it matters only
        # while offered): no FSM state decode in front of, e.g., the accumulator's first read
        # address or the weight loader's counters.
        post_cmd = Signal.like(postprocess.cmd.payload)
        m.d.comb += [post_cmd.params.pbuf_word.eq(self.pbuf_rd.data),
                     post_cmd.params.activation.eq(conv.activation),
                     post_cmd.count.eq(pixels)]
        m.d.comb += [
            *_assign(wload.cmd.payload, {"base": conv.wbuf_addr, "count": weight_words,
                                         "tag": bank}),
            *_assign(accumulator.cmd.payload, {
                "acc_addr": conv.acc_addr, "pixels": pixels,
                "accumulate": conv.accumulate, "output": conv.output}),
            postprocess.cmd.payload.eq(post_cmd),
            *_assign(pooling.cmd.payload, {"kind": pool.kind, "mult": pool.mult,
                                           "shift": pool.shift}),
            *_assign(eltwise.cmd.payload, {"params": {
                "mult_a": add.mult_a, "mult_b": add.mult_b, "shift": add.shift,
                "activation": add.activation}, "count": add.count}),
        ]

        def send(**payloads):
            """The payloads of this state's commands (offered while their `offer` bit is set)."""
            for name, payload in payloads.items():
                m.d.comb += _assign(ports[name].payload, payload)

        new_mode = Signal(Mode)
        m.d.comb += new_mode.eq(Mux(
            opcode == Opcode.CONV, Mode.CONV,
            Mux(opcode == Opcode.ADD, Mode.ADD,
                Mux(_view(PoolLayout, word).kind == PoolKind.GLOBAL_AVG, Mode.POOL_GLOBAL,
                    Mode.POOL_WINDOW))))

        with m.FSM():
            with m.State("IDLE"):
                same_mode = route.bit_select(new_mode.as_value(), 1)
                with m.If(self.instr.valid & order.w_rdy & (same_mode | idle)):
                    m.d.comb += self.instr.ready.eq(1)
                    m.d.sync += [route.eq(1 << new_mode.as_value()),
                                 conv.eq(_view(ConvLayout, word)),
                                 pool.eq(_view(PoolLayout, word)), add.eq(_view(AddLayout, word))]
                    with m.Switch(opcode):
                        with m.Case(Opcode.CONV):
                            m.next = "CONV_PARAMS"
                        with m.Case(Opcode.POOL):
                            m.next = "POOL_SIZE"
                        with m.Default():
                            m.d.sync += offer.eq(mask("eltwise", "writer"))
                            m.next = "ADD"
            with m.State("CONV_PARAMS"):
                # One cycle to read the parameter word and form the pixel count.
                m.d.comb += [self.pbuf_rd.addr.eq(conv.pbuf_addr), self.pbuf_rd.en.eq(1)]
                m.d.sync += _assign(window_payload, {
                    "in_h": conv.in_h, "in_w": conv.in_w, "groups": conv.in_groups,
                    "kernel": conv.kernel, "stride": conv.stride, "pad_top": conv.pad_top,
                    "pad_left": conv.pad_left, "out_h": conv.out_h, "out_w": conv.out_w,
                    "chunk_start": conv.chunk_start, "chunk_count": conv.chunk_count,
                })
                m.d.sync += [pixels.eq(conv.out_h * conv.out_w),
                             weight_words.eq(conv.chunk_count * c.columns),
                             offer.eq(Mux(conv.output,
                                          mask("tiles", "window", "wload", "acc", "post",
                                               "writer"),
                                          mask("tiles", "window", "wload", "acc")))]
                m.next = "CONV"
            with m.State("CONV"):
                m.d.comb += self.pbuf_rd.en.eq(0)
                send(tiles={"base": conv.ibuf_addr, "in_h": conv.in_h, "in_w": conv.in_w,
                            "groups": conv.in_groups},
                     writer={"base": conv.obuf_addr, "count": pixels})
                m.d.comb += [banks.w_data.eq(bank),
                             banks.w_en.eq(window.cmd.valid & window.cmd.ready)]
                with m.If(all_sent):
                    m.d.comb += [order.w_en.eq(1), order.w_data.eq(~conv.output)]
                    m.d.sync += bank.eq(~bank)
                    m.next = "IDLE"
            with m.State("POOL_SIZE"):
                m.d.sync += [plane_in.eq(pool.in_h * pool.in_w), group.eq(0),
                             last_group.eq(pool.groups == 1),
                             pool_taps.eq(pool.kernel * pool.kernel),
                             plane_base.eq(pool.ibuf_addr),
                             plane_words.eq(pool.out_h * pool.out_w)]
                m.next = "POOL_WORDS"
            with m.State("POOL_WORDS"):
                # Two partial products of out_h * out_w by the low and the high half of
                # `groups`, added in the next state: in LUTs (OrangeCrab) the whole 20 x 10
                # product was the 25F's critical path at fae08c4 (9.9 ns).
                m.d.sync += [pool_low.eq(plane_words * pool.groups[:groups_half]),
                             pool_high.eq(plane_words * pool.groups[groups_half:])]
                m.next = "POOL_COUNT"
            with m.State("POOL_COUNT"):
                # Their sum in a register: added in the writer command's payload it sat between
                # the FSM state and the writer's `count != 0` load enable (the top of the
                # ULX3S netlist estimate at 32b2cd4).
                m.d.sync += [pool_count.eq(pool_low + (pool_high << groups_half)),
                             offer.eq(mask("writer"))]
                m.d.sync += _assign(window_payload, {
                    "in_h": pool.in_h, "in_w": pool.in_w, "groups": 1,
                    "kernel": pool.kernel, "stride": pool.stride,
                    "pad_top": pool.pad_top, "pad_left": pool.pad_left,
                    "out_h": pool.out_h, "out_w": pool.out_w, "chunk_start": 0,
                    "chunk_count": pool_taps})
                m.next = "POOL_WRITER"
            plane_commands = Mux(pool.kind == PoolKind.GLOBAL_AVG, mask("tiles", "pool"),
                                 mask("tiles", "pool", "window"))
            with m.State("POOL_WRITER"):
                send(writer={"base": pool.obuf_addr, "count": pool_count})
                with m.If(all_sent):
                    m.d.sync += offer.eq(plane_commands)
                    m.next = "POOL_PLANE"
            with m.State("POOL_PLANE"):
                # One window-generator (or global) pass per channel block.
                tile_cmd = {"base": plane_base, "in_h": pool.in_h, "in_w": pool.in_w,
                            "groups": 1}
                send(tiles=tile_cmd)
                with m.If(all_sent):
                    m.d.sync += [group.eq(group + 1), plane_base.eq(plane_base + plane_in),
                                 last_group.eq(group + 2 == pool.groups)]
                    with m.If(last_group):
                        m.d.comb += [order.w_en.eq(1), order.w_data.eq(0)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += offer.eq(plane_commands)
            with m.State("ADD"):
                send(writer={"base": add.obuf_addr, "count": add.count})
                with m.If(all_sent):
                    m.d.sync += [add_addr.eq(add.a_addr), add_b_addr.eq(add.b_addr),
                                 add_phase.eq(0), add_left.eq(add.count)]
                    m.d.comb += [order.w_en.eq(1), order.w_data.eq(0)]
                    m.next = "ADD_RUN"
            with m.State("ADD_RUN"):
                # The pair addresses run from the registers set above; wait until issued.
                with m.If((add_left == 0) | ((add_left == 1) & add_phase &
                                             ibuf_reader.a.ready)):
                    m.next = "IDLE"
        return m
