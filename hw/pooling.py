"""Pooling unit: max, average and global average over window chunks, then requantization.

For every window (the chunks up to one with `last`) and every lane it reduces the taps to r:
MAX -- the largest inside tap, -128 when no tap is inside (outside taps never win); AVG and
GLOBAL_AVG -- the sum of the taps, outside taps counting zero (GLOBAL_AVG is fed the plain pixel
words of a whole plane with `last` on the final one). Then y = saturate8(round_shift(r * mult,
shift)) exactly as hw/arith.py, as sim/functional.py `_pool` does.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed, unsigned
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


class PoolingUnit(wiring.Component):
    """Window reduction and requantization, `config.rows` lanes in parallel.

    Ports:
      cmd (in, stream of `pool_cmd_layout`): kind, mult (signed 16-bit), shift (0..63) of the
        next pass; accepted when no pass is open. A pass ends with the tap that has `end`.
      i (in, stream of `pool_chunk_layout(config)`): taps of one window after another.
      o (out, stream of unsigned(8*rows)): one int8 word per window, lane 0 in the low byte.

    Latency: the window's word transfers on `o` `LATENCY` = 6 edges after the edge that
    accepts its `last` tap, one register stage each, sized for 100 MHz on an ECP5 (10 ns;
    the unregistered 3-stage unit limited the ULX3S build to 42 MHz):
      1 input register (taps arrive straight from block-RAM read data: the line buffer, or
        the input buffer for GLOBAL_AVG; a DP16KD's data output is 5.8 ns clock-to-out);
      2 accumulate (MAX compares 8 bits: its running maximum stays within int8; sums add
        `pool_sum_shape` bits);
      3 r * mult as two partial products, r[:17] x mult and r[17:] x mult (one 18x18
        multiplier each);
      4 their sum;
      5 q = (2 * product) >> shift (barrel shifter);
      6 saturate8((q + 1) >> 1).
    Throughput: one tap per cycle, so one window per cycle for 1-tap windows; the first tap
    of a pass is accepted at the earliest one edge after its cmd, and the next cmd one edge
    after the `end` tap (each tap carries its pass's kind, mult and shift down the pipeline).
    `i.ready` follows `o.ready` combinationally: backpressure on `o` stalls the whole
    pipeline. The valid flags and pass parameters move at every advance; a stage's lane data
    registers load only when the stage before holds a tap or a finished window, so an idle
    unit (every convolution) does not recompute 16 lanes of requantization each cycle,
    which had been 6% of the Verilated model's time (docs/performance.md).

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

    LATENCY = 6

    def elaborate(self, platform) -> Module:
        m = Module()
        lanes = self._config.rows
        sum_shape = pool_sum_shape(self._config)

        busy = Signal()
        params = Signal(pool_cmd_layout)
        m.d.comb += self.cmd.ready.eq(~busy)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [params.eq(self.cmd.payload), busy.eq(1)]

        # One enable for every stage: when `o` stalls nothing moves.
        out_valid = Signal()
        advance = ~out_valid | self.o.ready
        m.d.comb += self.i.ready.eq(busy & advance)
        take = self.i.valid & self.i.ready
        tap = self.i.payload
        with m.If(take & tap.end):
            m.d.sync += busy.eq(0)

        # Control down the stages: valid (stage 1: a tap, from stage 2 on: a finished window),
        # the tap's pass parameters (kind for stage 2, mult for stage 3, shift for stage 5).
        valid = [Signal(name=f"s{n}_valid") for n in range(1, 6)]
        s1_last, s1_max = Signal(), Signal()
        mults = [Signal(pool_cmd_layout["mult"].shape, name=f"s{n}_mult") for n in (1, 2)]
        shifts = [Signal(pool_cmd_layout["shift"].shape, name=f"s{n}_shift")
                  for n in (1, 2, 3, 4)]
        with m.If(advance):
            m.d.sync += [
                valid[0].eq(take), s1_last.eq(tap.last), s1_max.eq(params.kind == PoolKind.MAX),
                mults[0].eq(params.mult), shifts[0].eq(params.shift),
                valid[1].eq(valid[0] & s1_last),
                *(later.eq(earlier) for earlier, later in zip(valid[1:], valid[2:])),
                mults[1].eq(mults[0]),
                *(later.eq(earlier) for earlier, later in zip(shifts, shifts[1:])),
            ]
        # Stage 1 registers the tap with an outside tap's lanes zeroed: one LUT4 per bit after
        # the block RAM's output, which merges with the compute unit's two-way tap mux (line
        # buffer or input buffer) into the same LUT4. Zeroed taps let a sum add the register
        # straight away (masking in stage 2 put a gate and a 128-way fan-out of `s1_inside`
        # in front of the 16 accumulator carry chains: 82 MHz on the ULX3S block).
        s1_data = Signal.like(tap.data, name="s1_data")
        s1_inside = Signal()
        with m.If(take):
            m.d.sync += [s1_data.eq(Mux(tap.inside, tap.data, 0)), s1_inside.eq(tap.inside)]
        words = []
        for lane in range(lanes):
            # Stage 2: accumulate. A running maximum (int8, outside taps never win) and a
            # running sum (outside taps are zero since stage 1) are both kept and restart from
            # their neutral values after a window's last tap, so the loop through each
            # register is one compare or one adder and a mux, with no first-tap or kind
            # select in it (those put the s2 accumulate at 82-91 MHz on the ULX3S block).
            x = s1_data[8 * lane:8 * lane + 8].as_signed()
            acc_max = Signal(signed(8), init=-128, name=f"acc_max{lane}")
            acc_sum = Signal(sum_shape, name=f"acc_sum{lane}")
            r = Signal(sum_shape, name=f"s2_r{lane}")
            # The next values as expressions, not signals: each register's update then
            # computes them only when it loads (Verilator evaluates a named combinational
            # signal every cycle); synthesis merges the copies.
            biggest = Mux(s1_inside & (x > acc_max), x, acc_max)
            total = acc_sum + x
            with m.If(advance & valid[0]):
                with m.If(s1_last):
                    m.d.sync += [r.eq(Mux(s1_max, biggest, total)), acc_max.eq(-128),
                                 acc_sum.eq(0)]
                with m.Else():
                    m.d.sync += [acc_max.eq(biggest), acc_sum.eq(total)]
            words.append(self._requantize(m, [advance & v for v in valid[1:4]], r,
                                          mults[1], shifts[3], lane))

        out_word = Signal(unsigned(8 * lanes))
        with m.If(advance):
            m.d.sync += out_valid.eq(valid[4])
        with m.If(advance & valid[4]):
            m.d.sync += out_word.eq(Cat(*words))
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.eq(out_word)]
        return m

    def _requantize(self, m: Module, loads: list[Value], r: Signal, mult: Signal,
                    shift: Signal, lane: int) -> Signal:
        """Stages 3-5 of one lane (`loads`: their register enables): r * mult as two partial
        products, their sum, then `_round_shift_saturate`. `mult` is stage 2's, `shift`
        stage 4's; returns the int8 that stage 6 registers."""
        low_bits = 17      # r[:17] is unsigned: with the 16-bit mult one 18x18 multiplier
        low = Signal(signed(low_bits + 1 + 16), name=f"s3_low{lane}")
        product = Signal(pool_product_shape(self._config), name=f"s4_product{lane}")
        if r.shape().width > low_bits:
            high = Signal(signed(r.shape().width - low_bits + 16), name=f"s3_high{lane}")
            with m.If(loads[0]):
                m.d.sync += [low.eq(r[:low_bits] * mult),
                             high.eq(r[low_bits:].as_signed() * mult)]
            with m.If(loads[1]):
                m.d.sync += product.eq((high << low_bits) + low)
        else:
            with m.If(loads[0]):
                m.d.sync += low.eq(r * mult)
            with m.If(loads[1]):
                m.d.sync += product.eq(low)
        return _round_shift_saturate(m, loads[2], product, shift)


def _round_shift_saturate(m: Module, enable: Value, product: Signal, shift: Signal) -> Signal:
    """saturate8(floor((product + 2**(shift-1)) / 2**shift)), shift 0 passing product through:
    registers q = (2 * product) >> shift when `enable` is high and returns the int8 computed
    from q combinationally (so the result follows product and shift one edge later).

    Floors nest, so the rounded value is (q + 1) >> 1, for shift 0 too: one barrel shifter
    and an incrementer, no bias decoder and no full-width adder in front of the shifter.
    Shifts of q's width - 1 or more leave q = 0 or -1 and the result 0 (the bias then exceeds
    every product), so the shifter only spans 0..width-1."""
    q = Signal(signed(product.shape().width + 1), name=f"{product.name}_q")
    width = q.shape().width
    with m.If(enable):
        m.d.sync += q.eq((product << 1) >> Mux(shift > width - 1, width - 1, shift))
    rounded = (q + 1) >> 1
    result = Signal(signed(8), name=f"{product.name}_y")
    m.d.comb += result.eq(Mux(rounded > 127, 127, Mux(rounded < -128, -128, rounded)))
    return result
