"""Post-processing of the accumulator columns: bias, requantization, saturation, activation.

Per column c: `y = act(saturate8(round_shift((acc + bias[c]) * mult[c], shift[c])))`, bit for
bit `hw.arith.activate(hw.arith.requantize(...))` as sim/functional.py runs it for CONV with
output=1.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from .activation import ActivationUnit, lut_write_layout
from .config import AcceleratorConfig
from .isa import Activation
from .pass_flow import PassFlow

__all__ = ["PostProcess", "postprocess_params_layout"]

# (acc + bias) is 33 bits and (acc + bias) * mult 49 bits (|x| <= 2**47 for int32 acc and
# bias and int16 mult); q = (2x) >> shift then needs 50.
_SUM_BITS = 33
_PRODUCT_BITS = _SUM_BITS + 16
_Q_BITS = _PRODUCT_BITS + 1


def postprocess_params_layout(config: AcceleratorConfig) -> data.StructLayout:
    """One pass's parameters: the parameter-buffer word as stored (per column c, bytes
    8c..8c+7 little-endian: int32 bias, int16 mult, u8 shift of which bits 0..5 count, pad)
    and the activation."""
    return data.StructLayout({"pbuf_word": unsigned(8 * config.pbuf_word_bytes),
                              "activation": Activation})


class PostProcess(wiring.Component):
    """Bias, requantization, saturation and activation of one pixel's `columns` accumulators
    per clock.

    Ports
    -----
    cmd : In(stream of {params: postprocess_params_layout(config), count})
        One command per pass: `params.pbuf_word` is the parameter-buffer word (bits 64c..64c+63
        for column c), `params.activation` the `isa.Activation`, `count` the pass's pixels
        (`count_bits = acc_words.bit_length()` bits, at most acc_words). The next command may
        be sent while a pass runs; it applies from the pixel after the current pass's last.
    i : In(stream of unsigned(columns * acc_bits))
        One pixel: column c's signed accumulator at bits [c*acc_bits, (c+1)*acc_bits).
    o : Out(stream of unsigned(8 * columns))
        One pixel: column c's int8 at bits [8c, 8c+8).
    lut : In(stream of `activation.lut_write_layout(word_bytes)`)
        LUT-buffer word writes (word `addr`, `word_bytes` entries); `word_bytes` cycles each.
        No pixel is admitted while a write is in progress, so a pass sees every word accepted
        before its pixels; do not write while a LUT pass is in flight (wait for `idle`).
    idle : Out(1)
        No command pending, no pixel in flight, every result taken (a table write in
        progress shows as `lut.ready` low instead).

    Latency 10 cycles from an accepted `i` to its `o.valid` (`LATENCY`): input register, bias
    add, two partial products, their sum, rounding shift, clamp, round/saturate with table
    read, table output register, activation select, output FIFO. Throughput one pixel per
    clock, also across pass boundaries; `i.ready` never depends on `o.ready` (credit flow
    control, hw/pass_flow.py).
    """

    # Stages and why (10 ns at 100 MHz on ECP5):
    #  0 input register with no logic before it: the pixel comes straight from the
    #    accumulator's add of a block-RAM word (the ULX3S board's critical path ran through
    #    both adds, 16.0 ns at commit bb596eb).
    #  1 acc + bias: a 33-bit carry chain (~17 CCU2C, ~4 ns).
    #  2 the 33x16 product as two partial products, (acc+bias)[16:33] (17-bit signed) x mult and
    #    (acc+bias)[0:16] (unsigned) x mult: each fits one 18x18 MULT18X18D (~5 ns plus routing;
    #    the 8x8 core went from 85 to 113 MHz by registering products).
    #  3 (hi << 16) + lo: a 49-bit carry chain (~25 CCU2C, ~5 ns): together with the multiplier
    #    ~10+ ns, so it gets its own stage.
    #  4 (2x) >> shift: a 50-bit barrel shifter, 6 mux levels (~6-7 ns with routing).
    #  5-8 ActivationUnit: clamp to 9 bits (50-bit compares), +1 >> 1 and table read, table
    #    output register, select.
    # Measured on the default 16 columns (yowasp synth_ecp5 + nextpnr-ecp5 --85k, out of
    # context): 110 MHz after place and route, 32 MULT18X18D, 16 DP16KD, ~9.1k LUT4, ~6.3k FF;
    # the critical path is the pass-switch control of hw/pass_flow.py, 7.6 of its 9.1 ns routing.
    DATAPATH_LATENCY = 5 + ActivationUnit.LATENCY
    LATENCY = DATAPATH_LATENCY + 1

    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config = config
        self.count_bits = config.acc_words.bit_length()
        self.params_layout = postprocess_params_layout(config)
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "params": self.params_layout, "count": unsigned(self.count_bits)}))),
            "i": In(stream.Signature(unsigned(config.columns * config.acc_bits))),
            "o": Out(stream.Signature(unsigned(8 * config.columns))),
            "lut": In(stream.Signature(lut_write_layout(config.word_bytes))),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        cols, acc_bits = cfg.columns, cfg.acc_bits
        m.submodules.flow = flow = PassFlow(
            data_shape=unsigned(cols * acc_bits), params_shape=self.params_layout,
            result_shape=unsigned(8 * cols), count_bits=self.count_bits,
            latency=self.DATAPATH_LATENCY)
        m.submodules.act = act = ActivationUnit(lanes=cols, q_bits=_Q_BITS,
                                                lut_word_bytes=cfg.word_bytes)
        connect(m, flipped(self.cmd), flow.cmd)
        connect(m, flipped(self.i), flow.i)
        connect(m, flow.o, flipped(self.o))
        connect(m, flipped(self.lut), act.lut)
        m.d.comb += [flow.hold.eq(~act.lut.ready), self.idle.eq(flow.idle)]

        # The valid flags move every cycle; each stage's data registers load only when the
        # stage before holds a pixel (a convolution sends a pixel every ~36 cycles: computing
        # every cycle had been 7% of the Verilated model's time, docs/performance.md).
        valids = [Signal(name=f"valid{s}") for s in (1, 2, 3, 4)]
        valid0 = Signal()
        loads = [valid0, *valids[:3]]
        # Stage 0: the pixel and the parameter fields it uses (bias, mult, shift per column).
        pixel = Signal(cols * acc_bits)
        word = Signal(64 * cols)
        kind0 = Signal(Activation)
        m.d.sync += valid0.eq(flow.dp_i.valid)
        with m.If(flow.dp_i.valid):
            m.d.sync += [pixel.eq(flow.dp_i.payload.data),
                         kind0.eq(flow.dp_i.payload.params.activation)]
            m.d.sync += [word[64 * c:64 * c + 54].eq(
                flow.dp_i.payload.params.pbuf_word[64 * c:64 * c + 54]) for c in range(cols)]
        qs = []
        mult1 = Signal(16 * cols)
        shift1, shift2, shift3 = (Signal(6 * cols, name=f"shift{s}") for s in (1, 2, 3))
        for c in range(cols):
            acc = pixel[c * acc_bits:(c + 1) * acc_bits].as_signed()
            bias = word[64 * c:64 * c + 32].as_signed()
            total = Signal(signed(_SUM_BITS), name=f"sum{c}")
            with m.If(loads[0]):
                m.d.sync += total.eq(acc + bias)

            mult = mult1[16 * c:16 * (c + 1)].as_signed()
            low = Signal(signed(33), name=f"low{c}")
            high = Signal(signed(33), name=f"high{c}")
            with m.If(loads[1]):
                m.d.sync += [low.eq(total[:16] * mult), high.eq(total[16:].as_signed() * mult)]

            product = Signal(signed(_PRODUCT_BITS), name=f"product{c}")
            with m.If(loads[2]):
                m.d.sync += product.eq((high << 16) + low)

            q = Signal(signed(_Q_BITS), name=f"q{c}")
            with m.If(loads[3]):
                m.d.sync += q.eq((product << 1) >> shift3[6 * c:6 * (c + 1)])
            qs.append(q)

        kinds = [Signal(Activation, name=f"kind{s}") for s in (1, 2, 3, 4)]
        with m.If(loads[0]):
            m.d.sync += [
                mult1.eq(Cat(word[64 * c + 32:64 * c + 48] for c in range(cols))),
                shift1.eq(Cat(word[64 * c + 48:64 * c + 54] for c in range(cols))),
            ]
        with m.If(loads[1]):
            m.d.sync += shift2.eq(shift1)
        with m.If(loads[2]):
            m.d.sync += shift3.eq(shift2)
        m.d.sync += [
            kinds[0].eq(kind0), valids[0].eq(valid0),
        ]
        for s in range(1, 4):
            m.d.sync += [kinds[s].eq(kinds[s - 1]), valids[s].eq(valids[s - 1])]
        m.d.comb += [
            act.i.payload.q.eq(Cat(*qs)), act.i.payload.activation.eq(kinds[3]),
            act.i.valid.eq(valids[3]),
        ]
        connect(m, act.o, flow.dp_o)
        return m
