"""The shared output end of post-processing and the element-wise unit: the last rounding step,
int8 saturation and the activation (none, ReLU or a 256-entry lookup table), `lanes` values per
clock.

Both users compute `round_shift(x, shift)` as `(q + 1) >> 1` with `q = (2 * x) >> shift`
(floor), which is exact for every shift 0..63 (see `ActivationUnit`). Doing the `+ 1` here,
after clamping `q` to 9 bits, replaces a 50-bit increment per lane with a 9-bit one.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .isa import Activation

__all__ = ["ActivationUnit", "lut_write_layout"]

LUT_ENTRIES = 256


def lut_write_layout(word_bytes: int) -> data.StructLayout:
    """One LUT-buffer word write: `addr` is the word index (0 .. 256/word_bytes - 1) and byte k
    of `data` is entry `addr * word_bytes + k` (the entry for y is lut[y + 128])."""
    return data.StructLayout({"addr": range(LUT_ENTRIES // word_bytes),
                              "data": unsigned(8 * word_bytes)})


class ActivationUnit(wiring.Component):
    """`y = act(saturate8((q + 1) >> 1))` on `lanes` lanes per clock, never stalling.

    With `q = floor(2 * x / 2**shift)` this is `act(saturate8(round_shift(x, shift)))` of
    hw/arith.py: for shift >= 1, `floor((floor(x / 2**(s-1)) + 1) / 2)` equals
    `floor((x + 2**(s-1)) / 2**s)`; for shift 0, `(2x + 1) >> 1 = x`.

    Ports
    -----
    i : In(stream, always_ready)
        `payload.q`: lane k is the signed `q_bits` value at bits [k*q_bits, (k+1)*q_bits);
        `payload.activation`: `isa.Activation` applied to this element.
    o : Out(stream, always_ready)
        lane k is the int8 result at bits [8k, 8k+8). The consumer must take every element.
    lut : In(stream of `lut_write_layout(lut_word_bytes)`)
        Writes one LUT-buffer word (`lut_word_bytes` entries) into the table. The unit takes
        one cycle per entry, so `lut.ready` is low for `lut_word_bytes` cycles after each
        accepted word; when `lut.ready` is high again every accepted word is in the table and an
        element entering `i` in that cycle sees it. Writing while LUT elements are in flight
        changes their results: the parent keeps new elements out while `lut.ready` is low.

    Latency 4 cycles from `i.valid` to `o.valid`, throughput one element per clock.
    """

    LATENCY = 4

    def __init__(self, *, lanes: int, q_bits: int, lut_word_bytes: int) -> None:
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
        if not isinstance(q_bits, int) or q_bits < 10:
            raise ValueError(f"q_bits must be an integer of at least 10 (a 9-bit clamp needs "
                             f"wider input), not {q_bits!r}")
        if not isinstance(lut_word_bytes, int) or lut_word_bytes < 1 or \
                LUT_ENTRIES % lut_word_bytes:
            raise ValueError(f"lut_word_bytes must divide {LUT_ENTRIES}, not {lut_word_bytes!r}")
        self.lanes = lanes
        self.q_bits = q_bits
        self.lut_word_bytes = lut_word_bytes
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "q": unsigned(lanes * q_bits), "activation": Activation}), always_ready=True)),
            "o": Out(stream.Signature(unsigned(8 * lanes), always_ready=True)),
            "lut": In(stream.Signature(lut_write_layout(lut_word_bytes))),
        })

    def elaborate(self, platform):
        m = Module()
        lanes, wb = self.lanes, self.lut_word_bytes

        # LUT loader: one entry per cycle into every lane's copy.
        loading = Signal()
        left = Signal(range(wb + 1))
        word = Signal(8 * wb)
        entry = Signal(8)
        m.d.comb += self.lut.ready.eq(~loading)
        with m.If(self.lut.valid & self.lut.ready):
            m.d.sync += [loading.eq(1), left.eq(wb), word.eq(self.lut.payload.data),
                         entry.eq(self.lut.payload.addr * wb)]
        with m.Elif(loading):
            m.d.sync += [loading.eq(left != 1), left.eq(left - 1), word.eq(word >> 8),
                         entry.eq(entry + 1)]

        # Stage 1: clamp q to [-256, 254]. Any q >= 254 rounds to >= 127 and any q <= -256 to
        # <= -128, so after the clamp the 9-bit (q + 1) >> 1 is already the saturated int8.
        clamped = [Signal(signed(9), name=f"clamped{k}") for k in range(lanes)]
        kind1, kind2 = (Signal(Activation, name=f"kind{s}") for s in (1, 2))
        valid1, valid2, valid3 = (Signal(name=f"valid{s}") for s in (1, 2, 3))
        for k in range(lanes):
            q = self.i.payload.q[k * self.q_bits:(k + 1) * self.q_bits].as_signed()
            # Data registers load only when the stage before holds a value (valid flags
            # move every cycle): an idle unit does not recompute its lanes every cycle.
            with m.If(self.i.valid):
                m.d.sync += clamped[k].eq(Mux(q > 254, 254, Mux(q < -256, -256, q[:9])))
        m.d.sync += [kind1.eq(self.i.payload.activation), valid1.eq(self.i.valid)]

        # Stage 2: the int8 value and its table read. Flipping bit 7 of y is y + 128, so the
        # table address costs no adder. One 256 x 8 memory per lane gives `lanes` lookups per
        # clock: 2 Kbit each, one DP16KD block RAM (56 on an LFE5U-25F, 208 on an 85F) or
        # ~32 TRELLIS_DPR16X4 LUT-RAM cells. One shared table in registers would instead cost
        # 2048 flip-flops plus a 256:1 mux per output bit, ~85 LUT4 x 8 bits x lanes
        # (~11k LUT4 for 16 lanes), so replicated memories are the cheaper way to 16 lookups.
        ys = [Signal(signed(8), name=f"y{k}") for k in range(lanes)]
        looked_up = []
        for k in range(lanes):
            # no_rw_check: a read of the entry being written is already excluded (see `lut`);
            # without it Yosys emulates read-old-data with a write-address compare and a mux
            # after the block RAM's 5.8 ns output (9.1-10.3 ns to table_out on the ULX3S).
            table = memory.Memory(shape=unsigned(8), depth=LUT_ENTRIES, init=[],
                                  attrs={"no_rw_check": 1})
            m.submodules[f"lut{k}"] = table
            write = table.write_port()
            read = table.read_port()
            y = ((clamped[k] + 1) >> 1)[:8]
            m.d.comb += [write.addr.eq(entry), write.data.eq(word[:8]), write.en.eq(loading),
                         read.addr.eq(y ^ 0x80), read.en.eq(valid1)]
            with m.If(valid1):
                m.d.sync += ys[k].eq(y)
            looked_up.append(read.data)
        m.d.sync += [kind2.eq(kind1), valid2.eq(valid1)]

        # Stage 3: register the table output, and apply none/ReLU meanwhile. A DP16KD's
        # clock-to-out is 5.8 ns; selecting in the same cycle took 9.2 ns of the 10 ns at
        # 100 MHz for 16 lanes (the critical path, 109 MHz after place and route).
        table_out = Signal(8 * lanes)
        plain = Signal(8 * lanes)
        use_table = Signal()
        relu = [Mux(y[7], 0, y) for y in ys]
        with m.If(valid2):
            m.d.sync += [
                table_out.eq(Cat(*looked_up)),
                plain.eq(Mux(kind2 == Activation.RELU, Cat(*relu), Cat(*ys))),
                use_table.eq(kind2 == Activation.LUT),
            ]
        m.d.sync += valid3.eq(valid2)

        # Stage 4: the output register.
        result = Signal(8 * lanes)
        valid4 = Signal()
        with m.If(valid3):
            m.d.sync += result.eq(Mux(use_table, table_out, plain))
        m.d.sync += valid4.eq(valid3)
        m.d.comb += [self.o.payload.eq(result), self.o.valid.eq(valid4)]
        return m
