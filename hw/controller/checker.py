"""Instruction checker: `hw.isa.decode` + `hw.isa.check` in hardware, three pipeline stages.

For every fetched word it computes the `ErrorCode` the dispatcher raises for it, in the order
sim/functional.py finds them: a fetch fault; an unknown opcode (ILLEGAL_OPCODE); reserved bits,
enum values or the static field rules of `decode` (ILLEGAL_FIELD) — these are `early`; then
the configuration limits of `check` (ILLEGAL_FIELD for kernel, stride, contexts and line
buffer, then MISALIGNED, DRAM_RANGE, BUFFER_RANGE) and last a token flag naming a neighbour
the queue does not have (ILLEGAL_FIELD).

Stages (why three: the extents are products of up to three 16-bit fields, e.g. a DMA's words
size0*count1*count2, and a 16x32 multiply plus a 50-bit compare per cycle would be the slowest
path of the controller):
  1. field decode, legality flags, first products (size0*count1, (count-1)*stride, in_h*in_w,
     out_h*out_w, in_w*in_groups, kernel*kernel);
  2. second products (x groups / x count2) and the DMA's last byte;
  3. range compares and the priority encoder.
The three products of a stage share multipliers between opcodes (the opcode selects the
operands), so the whole checker uses six multipliers.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..isa import (LAYOUTS, Activation, AddLayout, Buffer, ConvLayout, ErrorCode,
                   Header, LoadStoreLayout, Opcode, PoolKind, PoolLayout)
from .layouts import CheckedWord, FetchedWord

__all__ = ["InstructionChecker", "CHECK_LATENCY"]

CHECK_LATENCY = 3

_SIZES = {op: data.Layout.cast(layout).size for op, layout in LAYOUTS.items()}


def _log2(n: int) -> int:
    return n.bit_length() - 1


class _Flags(data.Struct):
    bad_opcode: 1    # ILLEGAL_OPCODE
    decode: 1        # ILLEGAL_FIELD found by decode (reserved bits, enums, static rules)
    field: 1         # ILLEGAL_FIELD found by check (config limits)
    misaligned: 1
    buffer: 1
    token: 1         # a pop/push flag towards a neighbour the queue does not have


class InstructionChecker(wiring.Component):
    """Ports:
      i (In stream FetchedWord): fetched words in program order.
      o (Out stream CheckedWord): the same words with their error code and `early` flag.

    Latency: CHECK_LATENCY = 3 cycles (accepted in cycle t, valid on `o` in cycle t+3).
    Throughput: one word per cycle; the pipeline advances as a whole when `o` is empty or
    accepted.
    """

    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self._config = config
        super().__init__({
            "i": In(stream.Signature(FetchedWord)),
            "o": Out(stream.Signature(CheckedWord)),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        def views(word):
            return (Header(word[:Header.as_shape().size]),
                    LoadStoreLayout(word[:_SIZES[Opcode.LOAD]]),
                    ConvLayout(word[:_SIZES[Opcode.CONV]]),
                    PoolLayout(word[:_SIZES[Opcode.POOL]]),
                    AddLayout(word[:_SIZES[Opcode.ADD]]))

        buffer_words = {Buffer.IBUF: c.ibuf_words, Buffer.WBUF: c.wbuf_words,
                        Buffer.PBUF: c.pbuf_words, Buffer.LUT: c.lut_words,
                        Buffer.OBUF: c.obuf_words}

        # ---- stage 1: decode, flags, first products -------------------------------------
        word0 = self.i.payload.word
        hd, ls, cv, pl, ad = views(word0)
        op = hd.opcode
        is_ls = (op == Opcode.LOAD) | (op == Opcode.STORE)
        flags0 = Signal(_Flags)
        m.d.comb += flags0.bad_opcode.eq(op.as_value() > max(o.value for o in Opcode))
        with m.Switch(op):
            for opcode, size in _SIZES.items():
                with m.Case(opcode):
                    self._stage1_rules(m, opcode, flags0, word0[size:] != 0, hd, ls, cv, pl, ad)
        pbuf = ls.buffer == Buffer.PBUF
        low_bits = Mux(pbuf, c.pbuf_word_bytes - 1, c.word_bytes - 1)
        m.d.comb += flags0.misaligned.eq(
            is_ls & ((ls.dram_addr | ls.stride1 | ls.stride2) & low_bits != 0))

        s1 = Signal(FetchedWord)
        s1_valid = Signal()
        s1_flags = Signal(_Flags)
        mul2, mul3 = Signal(48, name="mul2"), Signal(48, name="mul3")
        s1_limit = Signal(17)
        # Stage 2's products take their operands from registers chosen here, so the opcode
        # decode of stage 2 only enables them and never muxes in front of the multipliers.
        mul5_a, mul6_a, mul56_b = (Signal(32, name="mul5_a"), Signal(20, name="mul6_a"),
                                   Signal(16, name="mul56_b"))
        # The valid flags move at every advance; a stage's data registers load only when it
        # takes a word (the checker is idle between fetches: computing its products every
        # cycle had been ~3% of the Verilated model's time, docs/performance.md).
        with m.If(advance):
            m.d.sync += s1_valid.eq(self.i.valid)
        with m.If(advance & self.i.valid):
            m.d.sync += [s1.eq(self.i.payload), s1_flags.eq(flags0)]
            with m.If(is_ls):
                m.d.sync += [
                    mul2.eq((ls.count2 - 1)[:16] * ls.stride2),
                    mul3.eq((ls.count1 - 1)[:16] * ls.stride1),
                    mul5_a.eq(ls.size0 * ls.count1), mul56_b.eq(ls.count2),
                ]
                with m.Switch(ls.buffer):
                    for buf, words in buffer_words.items():
                        with m.Case(buf):
                            m.d.sync += s1_limit.eq(words)
            with m.Elif(op == Opcode.CONV):
                m.d.sync += [mul2.eq(cv.out_h * cv.out_w),
                             mul3.eq(cv.in_w * cv.in_groups),
                             mul5_a.eq((cv.in_h * cv.in_w)[:20]),
                             mul6_a.eq(cv.kernel * cv.kernel), mul56_b.eq(cv.in_groups)]
            with m.Else():
                m.d.sync += [mul2.eq(pl.out_h * pl.out_w),
                             mul5_a.eq((pl.in_h * pl.in_w)[:20]),
                             mul6_a.eq((pl.out_h * pl.out_w)[:20]), mul56_b.eq(pl.groups)]

        # ---- stage 2: second products, DMA end ------------------------------------------
        hd1, ls1, _, _, _ = views(s1.word)
        op1 = hd1.opcode
        s2 = Signal(FetchedWord)
        s2_valid = Signal()
        s2_flags = Signal(_Flags)
        mul5, mul6 = Signal(48, name="mul5"), Signal(48, name="mul6")
        s2_pixels = Signal(20)
        dram_end = Signal(51)
        s2_limit = Signal(17)
        pbuf1 = ls1.buffer == Buffer.PBUF
        # size0 x word bytes is a shift: both word sizes are powers of two.
        size_bytes = Mux(pbuf1, ls1.size0 << _log2(c.pbuf_word_bytes),
                         ls1.size0 << _log2(c.word_bytes))
        flags1 = Signal(_Flags)
        m.d.comb += flags1.eq(s1_flags)
        with m.If(op1 == Opcode.CONV):
            m.d.comb += flags1.field.eq(s1_flags.field | (mul3 > c.line_buffer_words))
        with m.If(advance):
            m.d.sync += s2_valid.eq(s1_valid)
        with m.If(advance & s1_valid):
            m.d.sync += [s2.eq(s1), s2_flags.eq(flags1),
                         s2_pixels.eq(mul2), s2_limit.eq(s1_limit),
                         dram_end.eq(ls1.dram_addr + mul2 + mul3 + size_bytes)]
            m.d.sync += mul5.eq(mul5_a * mul56_b)
            with m.If((op1 != Opcode.LOAD) & (op1 != Opcode.STORE)):
                m.d.sync += mul6.eq(mul6_a * mul56_b)

        # ---- stage 3: range compares, priority --------------------------------------------
        hd2, ls2, cv2, pl2, _ = views(s2.word)
        op2 = hd2.opcode
        flags2 = Signal(_Flags)
        dram_bad = Signal()
        m.d.comb += flags2.eq(s2_flags)
        with m.Switch(op2):
            with m.Case(Opcode.LOAD, Opcode.STORE):
                m.d.comb += [dram_bad.eq(dram_end > c.dram_bytes),
                             flags2.buffer.eq(ls2.buf_addr + mul5 > s2_limit)]
            with m.Case(Opcode.CONV):
                chunk_end = cv2.chunk_start + cv2.chunk_count
                wbuf_end = cv2.wbuf_addr + (cv2.chunk_count << _log2(c.columns))
                m.d.comb += [
                    flags2.decode.eq(s2_flags.decode | (chunk_end > mul6)),
                    flags2.buffer.eq((cv2.ibuf_addr + mul5 > c.ibuf_words)
                                     | (wbuf_end > c.wbuf_words)
                                     | (cv2.acc_addr + s2_pixels > c.acc_words)
                                     | (cv2.output & ((cv2.obuf_addr + s2_pixels > c.obuf_words)
                                                      | (cv2.pbuf_addr + 1 > c.pbuf_words)))),
                ]
            with m.Case(Opcode.POOL):
                m.d.comb += flags2.buffer.eq((pl2.ibuf_addr + mul5 > c.ibuf_words)
                                             | (pl2.obuf_addr + mul6 > c.obuf_words))
        code, early = Signal(ErrorCode), Signal()
        with m.If(s2.fault != ErrorCode.NONE):
            m.d.comb += [code.eq(s2.fault), early.eq(1)]
        with m.Elif(flags2.bad_opcode):
            m.d.comb += [code.eq(ErrorCode.ILLEGAL_OPCODE), early.eq(1)]
        with m.Elif(flags2.decode):
            m.d.comb += [code.eq(ErrorCode.ILLEGAL_FIELD), early.eq(1)]
        with m.Elif(flags2.field):
            m.d.comb += code.eq(ErrorCode.ILLEGAL_FIELD)
        with m.Elif(flags2.misaligned):
            m.d.comb += code.eq(ErrorCode.MISALIGNED)
        with m.Elif(dram_bad):
            m.d.comb += code.eq(ErrorCode.DRAM_RANGE)
        with m.Elif(flags2.buffer):
            m.d.comb += code.eq(ErrorCode.BUFFER_RANGE)
        with m.Elif(flags2.token):
            m.d.comb += code.eq(ErrorCode.ILLEGAL_FIELD)
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(s2_valid), self.o.payload.word.eq(s2.word),
                         self.o.payload.code.eq(code), self.o.payload.early.eq(early)]
        return m

    def _stage1_rules(self, m, opcode, flags, reserved, hd, ls, cv, pl, ad) -> None:
        """Reserved bits, enum values, static rules, config field limits and token flags of
        one opcode."""
        c = self._config
        m.d.comb += flags.decode.eq(reserved)
        if opcode in (Opcode.LOAD, Opcode.STORE):
            static = (ls.buffer.as_value() > max(b.value for b in Buffer)) \
                | (ls.size0 == 0) | (ls.count1 == 0) | (ls.count2 == 0)
            if opcode is Opcode.STORE:
                static |= ls.buffer != Buffer.OBUF
                token = hd.pop_next | hd.push_next
            else:
                token = hd.pop_prev | hd.push_prev
            m.d.comb += [flags.decode.eq(reserved | static), flags.token.eq(token)]
        elif opcode is Opcode.CONV:
            static = (cv.activation.as_value() > max(a.value for a in Activation)) \
                | (Cat(cv.in_h == 0, cv.in_w == 0, cv.in_groups == 0, cv.kernel == 0,
                       cv.stride == 0, cv.out_h == 0, cv.out_w == 0, cv.chunk_count == 0) != 0) \
                | (cv.pad_top >= cv.kernel) | (cv.pad_left >= cv.kernel) \
                | ((cv.activation != Activation.NONE) & ~cv.output)
            field = (cv.kernel > c.max_kernel) | (cv.stride > c.max_stride) \
                | (cv.chunk_count > c.contexts)
            m.d.comb += [flags.decode.eq(reserved | static), flags.field.eq(field)]
        elif opcode is Opcode.POOL:
            zero = Cat(pl.in_h == 0, pl.in_w == 0, pl.groups == 0, pl.out_h == 0,
                       pl.out_w == 0) != 0
            is_global = pl.kind == PoolKind.GLOBAL_AVG
            global_bad = (Cat(pl.kernel, pl.stride, pl.pad_top, pl.pad_left) != 0) \
                | (pl.out_h != 1) | (pl.out_w != 1)
            window_bad = (pl.kernel == 0) | (pl.stride == 0) | (pl.pad_top >= pl.kernel) \
                | (pl.pad_left >= pl.kernel)
            static = (pl.kind.as_value() > max(k.value for k in PoolKind)) | zero \
                | Mux(is_global, global_bad, window_bad)
            field = ~is_global & ((pl.kernel > c.max_kernel) | (pl.stride > c.max_stride)
                                  | (pl.in_w > c.line_buffer_words))
            m.d.comb += [flags.decode.eq(reserved | static), flags.field.eq(field)]
        elif opcode is Opcode.ADD:
            static = (ad.activation.as_value() > max(a.value for a in Activation)) \
                | (ad.count == 0)
            buffer = (ad.a_addr + ad.count > c.ibuf_words) \
                | (ad.b_addr + ad.count > c.ibuf_words) \
                | (ad.obuf_addr + ad.count > c.obuf_words)
            m.d.comb += [flags.decode.eq(reserved | static), flags.buffer.eq(buffer)]
