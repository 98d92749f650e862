"""Instruction checker: `hw.isa.decode` + `hw.isa.check` in hardware, four pipeline stages.

For every fetched word it computes the `ErrorCode` the dispatcher raises for it, in the order
sim/functional.py finds them: a fetch fault; an unknown opcode (ILLEGAL_OPCODE); reserved bits,
enum values or the static field rules of `decode` (ILLEGAL_FIELD) — these are `early`; then
the configuration limits of `check` (ILLEGAL_FIELD for kernel, stride, contexts and line
buffer, then MISALIGNED, DRAM_RANGE, BUFFER_RANGE) and last a token flag naming a neighbour
the queue does not have (ILLEGAL_FIELD).

The extents are products of up to three fields (a DMA's words size0*count1*count2), so:
  1. field decode and legality flags; the opcode picks the operands of the four first
     products into registers (no decode or mux in front of a multiplier);
  2. the first products: a2*b2 ((count2-1)*stride2 or out_h*out_w), a3*b3
     ((count1-1)*stride1 or in_w*in_groups), a5*b5 (size0*count1 or in_h*in_w) and a6*b6
     (kernel*kernel or the pool's out_h*out_w);
  3. the second products (x count2 / x groups) and the DMA's last byte;
  4. range compares and the priority encoder.
One multiplier per product for every opcode: six in all. Their widths are cut without
changing any result: a DRAM stride is multiplied only in its low `dram_bits`
(= log2 dram_bytes) bits, a stride with a higher bit and a count above 1 already reaches past
the DRAM; a first product of the buffer extents saturates at `_SAT_BITS`, past every buffer.
On the 64 KiB board DRAMs every product then fits one 18x18 DSP or two.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..isa import (LAYOUTS, Activation, AddLayout, Buffer, ConvLayout, ErrorCode,
                   Header, LoadStoreLayout, Opcode, PoolKind, PoolLayout)
from .layouts import CheckedWord, FetchedWord

__all__ = ["InstructionChecker", "CHECK_LATENCY"]

CHECK_LATENCY = 4

_SIZES = {op: data.Layout.cast(layout).size for op, layout in LAYOUTS.items()}


def _log2(n: int) -> int:
    return n.bit_length() - 1


class _Flags(data.Struct):
    bad_opcode: 1    # ILLEGAL_OPCODE
    decode: 1        # ILLEGAL_FIELD found by decode (reserved bits, enums, static rules)
    field: 1         # ILLEGAL_FIELD found by check (config limits)
    misaligned: 1
    dram: 1          # DRAM_RANGE known before the compare: a stride at or past the DRAM size
    buffer: 1
    token: 1         # a pop/push flag towards a neighbour the queue does not have


class InstructionChecker(wiring.Component):
    """Ports:
      i (In stream FetchedWord): fetched words in program order.
      o (Out stream CheckedWord): the same words with their error code and `early` flag.

    Latency: CHECK_LATENCY = 4 cycles (accepted in cycle t, valid on `o` in cycle t+4).
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
        limit_max = max(*buffer_words.values(), c.acc_words)
        # A saturated extent (2**sat_bits - 1) is past every buffer from any start address.
        sat_bits = limit_max.bit_length() + 1
        dram_bits = _log2(c.dram_bytes)

        # The pipeline: valid flags move at every advance; a stage's data registers load only
        # when it takes a word (the checker is idle between fetches: computing its products
        # every cycle had been ~3% of the Verilated model's time, docs/performance.md).
        def stage(valid_in, valid, word_in, word, flags_in, flags):
            with m.If(advance):
                m.d.sync += valid.eq(valid_in)
            with m.If(advance & valid_in):
                m.d.sync += [word.eq(word_in), flags.eq(flags_in)]
            return advance & valid_in

        def pipe(n):
            return (Signal(name=f"s{n}_valid"), Signal(FetchedWord, name=f"s{n}"),
                    Signal(_Flags, name=f"s{n}_flags"))

        # ---- stage 1: decode, flags, operands ----------------------------------------------
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
        if dram_bits < 32:
            m.d.comb += flags0.dram.eq(is_ls & (
                ((ls.count1 > 1) & (ls.stride1[dram_bits:] != 0))
                | ((ls.count2 > 1) & (ls.stride2[dram_bits:] != 0))))

        s1_valid, s1, s1_flags = pipe(1)
        take1 = stage(self.i.valid, s1_valid, self.i.payload, s1, flags0, s1_flags)
        a2, a3, a5, b5 = (Signal(16, name=n) for n in ("a2", "a3", "a5", "b5"))
        b2, b3 = (Signal(max(dram_bits, 10), name=n) for n in ("b2", "b3"))
        a6, b6 = Signal(10, name="a6"), Signal(10, name="b6")
        b56 = Signal(16, name="b56")
        s1_limit = Signal(17)
        with m.If(take1):
            with m.If(is_ls):
                m.d.sync += [a2.eq(ls.count2 - 1), b2.eq(ls.stride2[:dram_bits]),
                             a3.eq(ls.count1 - 1), b3.eq(ls.stride1[:dram_bits]),
                             a5.eq(ls.size0), b5.eq(ls.count1), b56.eq(ls.count2)]
                with m.Switch(ls.buffer):
                    for buf, words in buffer_words.items():
                        with m.Case(buf):
                            m.d.sync += s1_limit.eq(words)
            with m.Elif(op == Opcode.CONV):
                m.d.sync += [a2.eq(cv.out_h), b2.eq(cv.out_w), a3.eq(cv.in_w),
                             b3.eq(cv.in_groups), a5.eq(cv.in_h), b5.eq(cv.in_w),
                             a6.eq(cv.kernel), b6.eq(cv.kernel), b56.eq(cv.in_groups)]
            with m.Else():
                m.d.sync += [a2.eq(pl.out_h), b2.eq(pl.out_w), a5.eq(pl.in_h), b5.eq(pl.in_w),
                             a6.eq(pl.out_h), b6.eq(pl.out_w), b56.eq(pl.groups)]

        # ---- stage 2: first products -------------------------------------------------------
        s2_valid, s2, s2_flags = pipe(2)
        take2 = stage(s1_valid, s2_valid, s1, s2, s1_flags, s2_flags)
        p2, p3 = (Signal(16 + len(b2), name=n) for n in ("p2", "p3"))
        p5, p6 = Signal(32, name="p5"), Signal(20, name="p6")
        s2_b56 = Signal(16)
        s2_limit = Signal(17)
        with m.If(take2):
            m.d.sync += [p2.eq(a2 * b2), p3.eq(a3 * b3), p5.eq(a5 * b5), p6.eq(a6 * b6),
                         s2_b56.eq(b56), s2_limit.eq(s1_limit)]

        # ---- stage 3: second products, DMA end ---------------------------------------------
        hd2, ls2, cv2, pl2, _ = views(s2.word)
        op2 = hd2.opcode
        flags2 = Signal(_Flags)
        m.d.comb += flags2.eq(s2_flags)
        with m.If(op2 == Opcode.CONV):
            m.d.comb += flags2.field.eq(s2_flags.field | (p3 > c.line_buffer_words))
        s3_valid, s3, s3_flags = pipe(3)
        take3 = stage(s2_valid, s3_valid, s2, s3, flags2, s3_flags)
        sat = (1 << sat_bits) - 1
        p5_sat = Mux(p5 > sat, sat, p5[:sat_bits])
        p6_sat = Mux(p6 > sat, sat, p6[:sat_bits])
        mul5 = Signal(sat_bits + 16, name="mul5")
        mul6 = Signal(sat_bits + 16, name="mul6")
        s3_pixels = Signal(20)
        dram_end = Signal(max(32, len(p2), 21) + 2)
        # Each "start + extent > limit" check of stage 4 is "extent > limit - start": the room
        # after the start address is formed here from the word, so that only a compare
        # follows the products (the word -> adder -> compare -> priority -> `code` path was
        # the 25F's critical path at 32b2cd4, 10.5 ns). Negative when the start is past it.
        room = signed(max(limit_max.bit_length(), 16) + 2)   # limit - a 16-bit address
        room_a, room_b, room_acc = (Signal(room, name=n) for n in ("room_a", "room_b", "room_acc"))
        chunk_end = Signal((cv2.chunk_start + cv2.chunk_count).shape())
        conv_bad = Signal()    # a CONV's weights or parameter word past its buffer
        # size0 x word bytes is a shift: both word sizes are powers of two.
        size_bytes = Mux(ls2.buffer == Buffer.PBUF, ls2.size0 << _log2(c.pbuf_word_bytes),
                         ls2.size0 << _log2(c.word_bytes))
        with m.If(take3):
            m.d.sync += [mul5.eq(p5_sat * s2_b56), s3_pixels.eq(p2),
                         dram_end.eq(ls2.dram_addr + p2 + p3 + size_bytes)]
            with m.If((op2 != Opcode.LOAD) & (op2 != Opcode.STORE)):
                m.d.sync += mul6.eq(p6_sat * s2_b56)
            wbuf_end = cv2.wbuf_addr + (cv2.chunk_count << _log2(c.columns))
            with m.Switch(op2):
                with m.Case(Opcode.LOAD, Opcode.STORE):
                    m.d.sync += room_a.eq(s2_limit - ls2.buf_addr)
                with m.Case(Opcode.CONV):
                    m.d.sync += [
                        room_a.eq(c.ibuf_words - cv2.ibuf_addr),
                        room_b.eq(c.obuf_words - cv2.obuf_addr),
                        room_acc.eq(c.acc_words - cv2.acc_addr),
                        chunk_end.eq(cv2.chunk_start + cv2.chunk_count),
                        conv_bad.eq((wbuf_end > c.wbuf_words)
                                    | (cv2.output & (cv2.pbuf_addr + 1 > c.pbuf_words))),
                    ]
                with m.Case(Opcode.POOL):
                    m.d.sync += [room_a.eq(c.ibuf_words - pl2.ibuf_addr),
                                 room_b.eq(c.obuf_words - pl2.obuf_addr)]

        # ---- stage 4: range compares, priority ---------------------------------------------
        hd3, _, cv3, _, _ = views(s3.word)
        op3 = hd3.opcode
        flags3 = Signal(_Flags)
        dram_bad = Signal()
        m.d.comb += flags3.eq(s3_flags)
        with m.Switch(op3):
            with m.Case(Opcode.LOAD, Opcode.STORE):
                m.d.comb += [dram_bad.eq(s3_flags.dram | (dram_end > c.dram_bytes)),
                             flags3.buffer.eq(mul5 > room_a)]
            with m.Case(Opcode.CONV):
                m.d.comb += [
                    flags3.decode.eq(s3_flags.decode | (chunk_end > mul6)),
                    flags3.buffer.eq((mul5 > room_a) | conv_bad | (s3_pixels > room_acc)
                                     | (cv3.output & (s3_pixels > room_b))),
                ]
            with m.Case(Opcode.POOL):
                m.d.comb += flags3.buffer.eq((mul5 > room_a) | (mul6 > room_b))
        code, early = Signal(ErrorCode), Signal()
        with m.If(s3.fault != ErrorCode.NONE):
            m.d.comb += [code.eq(s3.fault), early.eq(1)]
        with m.Elif(flags3.bad_opcode):
            m.d.comb += [code.eq(ErrorCode.ILLEGAL_OPCODE), early.eq(1)]
        with m.Elif(flags3.decode):
            m.d.comb += [code.eq(ErrorCode.ILLEGAL_FIELD), early.eq(1)]
        with m.Elif(flags3.field):
            m.d.comb += code.eq(ErrorCode.ILLEGAL_FIELD)
        with m.Elif(flags3.misaligned):
            m.d.comb += code.eq(ErrorCode.MISALIGNED)
        with m.Elif(dram_bad):
            m.d.comb += code.eq(ErrorCode.DRAM_RANGE)
        with m.Elif(flags3.buffer):
            m.d.comb += code.eq(ErrorCode.BUFFER_RANGE)
        with m.Elif(flags3.token):
            m.d.comb += code.eq(ErrorCode.ILLEGAL_FIELD)
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(s3_valid), self.o.payload.word.eq(s3.word),
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
