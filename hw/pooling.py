"""Pooling unit: max, average and global average over window chunks, then requantization.

For every window (the chunks up to one with `last`) and every lane it reduces the taps to r:
MAX -- the largest inside tap, -128 when no tap is inside (outside taps never win); AVG and
GLOBAL_AVG -- the sum of the taps, outside taps counting zero (GLOBAL_AVG is fed the plain pixel
words of a whole plane with `last` on the final one). Then y = saturate8(round_shift(r * mult,
shift)) exactly as hw/arith.py, as sim/functional.py `_pool` does.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw import isa
from hw.config import AcceleratorConfig
from hw.isa import PoolKind

__all__ = ["pool_cmd_layout", "pool_chunk_layout", "pool_sum_shape", "pool_product_shape",
           "PoolingUnit"]

_POOL = data.Layout.cast(isa.PoolLayout)


def pool_sum_shape(config: AcceleratorConfig) -> signed:
    """The sum of one window or plane: at most max(max_kernel**2, largest buffer) taps of
    |x| <= 128, since a POOL plane lies in the input buffer (`isa.check`) and a fused plane in
    the accumulator or output buffer. Default config: 4096 * 128 = 2**19, 20 bits signed
    (not the 28 bits a 1023 x 1023 plane would need; with the shifter below this took the
    16-lane unit from 11449 to 6826 LUT4 in Yosys synth_ecp5)."""
    taps = max(config.max_kernel ** 2, config.ibuf_words, config.acc_words, config.obuf_words)
    return signed((taps * 128 - 1).bit_length() + 1)


def pool_product_shape(config: AcceleratorConfig) -> signed:
    """r * mult, exact: the sum's width plus the 16-bit multiplier's."""
    return signed(pool_sum_shape(config).width + _POOL["mult"].width)


pool_cmd_layout = data.StructLayout({
    "kind": PoolKind, "mult": _POOL["mult"].shape, "shift": _POOL["shift"].shape,
})


def pool_chunk_layout(config: AcceleratorConfig) -> data.StructLayout:
    """One tap word: `data` (rows int8 lanes, lane 0 in the low byte), `inside`, `last`
    (final tap of the window) and `end` (final tap of the pass) -- the WindowGenerator's chunk
    without its context index."""
    return data.StructLayout({"data": unsigned(8 * config.rows), "inside": 1, "last": 1,
                              "end": 1})


def _round_shift_saturate(m: Module, product: Signal, shift: Signal) -> Signal:
    """saturate8(floor((product + 2**(shift-1)) / 2**shift)), shift 0 passing product through.

    For shift >= 1 this equals ((product >> (shift-1)) + 1) >> 1 (floors nest), which needs
    one barrel shifter and an incrementer instead of a bias decoder and a full-width adder.
    Shifts of the product's width or more give 0 (the bias exceeds every product), as does
    shifting by width - 1 and rounding, so the shifter only spans 0..width-1."""
    width = product.shape().width
    amount = Signal(range(width))
    m.d.comb += amount.eq(Mux(shift > width, width - 1, shift - 1))
    halved = Signal(signed(width))
    m.d.comb += halved.eq(product >> amount)
    rounded = Signal(signed(width))
    m.d.comb += rounded.eq((halved + 1) >> 1)
    shifted = Mux(shift == 0, product, rounded)
    result = Signal(signed(8))
    m.d.comb += result.eq(Mux(shifted > 127, 127, Mux(shifted < -128, -128, shifted)))
    return result


class PoolingUnit(wiring.Component):
    """Window reduction and requantization, `config.rows` lanes in parallel.

    Ports:
      cmd (in, stream of `pool_cmd_layout`): kind, mult (signed 16-bit), shift (0..63) of the
        next pass; accepted when no pass is open. A pass ends with the tap that has `end`.
      i (in, stream of `pool_chunk_layout(config)`): taps of one window after another.
      o (out, stream of unsigned(8*rows)): one int8 word per window, lane 0 in the low byte.

    Latency: the window's word is valid on `o` 3 cycles after the clock edge that accepts its
    `last` tap (accumulate, multiply, round-shift-saturate registers: the 20 x 16-bit product
    of the default config has a stage of its own). Throughput: one tap per cycle, so one
    window per cycle for 1-tap windows; the first tap of a pass is accepted at the earliest
    one edge after its cmd, and the next cmd one edge after the `end` tap. `i.ready` follows
    `o.ready` combinationally: backpressure on `o` stalls the whole pipeline.

    A window or plane must not have more taps than `pool_sum_shape` allows for (true of every
    instruction `isa.check` accepts).
    """

    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self._config = config
        super().__init__({
            "cmd": In(stream.Signature(pool_cmd_layout)),
            "i": In(stream.Signature(pool_chunk_layout(config))),
            "o": Out(stream.Signature(unsigned(8 * config.rows))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        lanes = self._config.rows
        sum_shape = pool_sum_shape(self._config)

        busy = Signal()
        params = Signal(pool_cmd_layout)
        m.d.comb += self.cmd.ready.eq(~busy)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [params.eq(self.cmd.payload), busy.eq(1)]

        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(busy & advance)
        take = self.i.valid & self.i.ready
        tap = self.i.payload
        with m.If(take & tap.end):
            m.d.sync += busy.eq(0)

        # Stage 0 accumulates, stage 1 holds a finished window's r, stage 2 its products.
        first = Signal(init=1)
        is_max = params.kind == PoolKind.MAX
        s1_valid, s2_valid = Signal(), Signal()
        s1_mult = Signal(pool_cmd_layout["mult"].shape)
        s1_shift, s2_shift = (Signal(pool_cmd_layout["shift"].shape) for _ in range(2))
        words = []
        for lane in range(lanes):
            x = tap.data[8 * lane:8 * lane + 8].as_signed()
            acc = Signal(sum_shape, name=f"acc{lane}")
            s1_r = Signal(sum_shape, name=f"s1_r{lane}")
            s2_p = Signal(pool_product_shape(self._config), name=f"s2_p{lane}")
            base = Mux(first, Mux(is_max, -128, 0), acc)
            value = Mux(tap.inside, x, Mux(is_max, -128, 0))
            new = Signal(sum_shape, name=f"new{lane}")
            m.d.comb += new.eq(Mux(is_max, Mux(value > base, value, base), base + value))
            with m.If(take):
                with m.If(tap.last):
                    m.d.sync += s1_r.eq(new)
                with m.Else():
                    m.d.sync += acc.eq(new)
            with m.If(advance):
                m.d.sync += s2_p.eq(s1_r * s1_mult)
            words.append(_round_shift_saturate(m, s2_p, s2_shift))
        with m.If(take):
            m.d.sync += first.eq(tap.last)

        out_valid = Signal()
        out_word = Signal(unsigned(8 * lanes))
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(take & tap.last),
                s2_valid.eq(s1_valid), s2_shift.eq(s1_shift),
                out_valid.eq(s2_valid), out_word.eq(Cat(*words)),
            ]
        with m.If(take & tap.last):
            m.d.sync += [s1_mult.eq(params.mult), s1_shift.eq(params.shift)]
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.eq(out_word)]
        return m
