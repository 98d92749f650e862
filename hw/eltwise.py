"""The element-wise unit: residual add of two rescaled int8 tensors, then activation.

Per lane: `y = act(saturate8(round_shift(a * mult_a + b * mult_b, shift)))`, bit for bit the
ADD instruction of sim/functional.py.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from .activation import ActivationUnit, lut_write_layout
from .config import AcceleratorConfig
from .isa import Activation, AddLayout
from .pass_flow import PassFlow
from .systolic.ecp5_dsp import registered_product, uses_ecp5_dsps

__all__ = ["EltwiseAdd", "eltwise_params_layout"]

_ADD_FIELDS = data.Layout.cast(AddLayout)
# a * mult_a is int8 x int16 = 24 bits, the sum of two 25, q = (2x) >> shift 26.
_PRODUCT_BITS = 8 + 16
_SUM_BITS = _PRODUCT_BITS + 1
_Q_BITS = _SUM_BITS + 1


def eltwise_params_layout() -> data.StructLayout:
    """One ADD's parameters, with the shapes of the instruction's fields (hw/isa.py)."""
    return data.StructLayout({name: _ADD_FIELDS[name].shape
                              for name in ("mult_a", "mult_b", "shift", "activation")})


class EltwiseAdd(wiring.Component):
    """`y = act(saturate8(round_shift(a * mult_a + b * mult_b, shift)))` on `lanes` int8 lanes
    per clock.

    Ports
    -----
    cmd : In(stream of {params: eltwise_params_layout(), count: unsigned(16)})
        One command per ADD: `params.mult_a`, `params.mult_b` (int16), `params.shift` (0..63),
        `params.activation` (`isa.Activation`), `count` the words of the ADD. The next command
        may be sent while one runs; it applies from the word after the current one's last.
    i : In(stream of unsigned(16 * lanes))
        One word pair: lane k of a at bits [8k, 8k+8), lane k of b at bits
        [8*lanes + 8k, 8*lanes + 8k + 8), both int8.
    o : Out(stream of unsigned(8 * lanes))
        Lane k's int8 result at bits [8k, 8k+8).
    lut : In(stream of `activation.lut_write_layout(word_bytes)`)
        LUT-buffer word writes, as for `PostProcess`: no word pair is admitted while a write is
        in progress; do not write while a LUT pass is in flight (wait for `idle`).
    idle : Out(1)
        No command pending, no element in flight, every result taken (a table write in
        progress shows as `lut.ready` low instead).

    Latency 9 cycles from an accepted `i` to its `o.valid` (`LATENCY`): operand registers,
    products, sum, rounding shift, the four ActivationUnit stages, output FIFO. Throughput one
    word per clock, also across command boundaries; `i.ready` never depends on `o.ready` (hw/pass_flow.py).
    """

    # Stages (10 ns at 100 MHz on ECP5): 1 operand registers; 2 two int8 x int16 products (one
    # MULT18X18D each; registered products took the 8x8 core from 85 to 113 MHz; without DSPs
    # two int8 x int8 partial products each, `_split_product`); 3 their 25-bit sum (~13 CCU2C;
    # four partial products without DSPs); 4 (2x) >> shift, a 26-bit barrel shifter of 6 mux
    # levels; 5-8 ActivationUnit. Stages 1-2 are the DSP's own input and output registers when
    # elaborated for an ECP5 platform (`_ecp5_product`): on the ULX3S board the operands came
    # from the input buffer's block RAM through the compute unit's muxes straight into the
    # multiplier (22.5 ns, issue 8).
    # Measured on the default 16 lanes (yowasp synth_ecp5 + nextpnr-ecp5 --85k, out of
    # context): 106 MHz after place and route, 32 MULT18X18D, 16 DP16KD, ~4.0k LUT4, ~2.6k FF;
    # the critical path is mult_a fanning out to the 16 lanes' multipliers (3.9 ns routing).
    DATAPATH_LATENCY = 4 + ActivationUnit.LATENCY
    LATENCY = DATAPATH_LATENCY + 1

    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self.config = config
        self.lanes = config.lanes
        self.params_layout = eltwise_params_layout()
        self.count_bits = Shape.cast(_ADD_FIELDS["count"].shape).width
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "params": self.params_layout, "count": unsigned(self.count_bits)}))),
            "i": In(stream.Signature(unsigned(16 * self.lanes))),
            "o": Out(stream.Signature(unsigned(8 * self.lanes))),
            "lut": In(stream.Signature(lut_write_layout(config.word_bytes))),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        m.submodules.flow = flow = PassFlow(
            data_shape=unsigned(16 * lanes), params_shape=self.params_layout,
            result_shape=unsigned(8 * lanes), count_bits=self.count_bits,
            latency=self.DATAPATH_LATENCY)
        m.submodules.act = act = ActivationUnit(lanes=lanes, q_bits=_Q_BITS,
                                                lut_word_bytes=self.config.word_bytes)
        connect(m, flipped(self.cmd), flow.cmd)
        connect(m, flipped(self.i), flow.i)
        connect(m, flow.o, flipped(self.o))
        connect(m, flipped(self.lut), act.lut)
        connect(m, act.o, flow.dp_o)
        m.d.comb += [flow.hold.eq(~act.lut.ready), self.idle.eq(flow.idle)]

        pair, params = flow.dp_i.payload.data, flow.dp_i.payload.params
        ecp5 = uses_ecp5_dsps(platform)
        if not ecp5:
            # Generic operand registers (stage 1); the products below are stage 2.
            mult_a = Signal(signed(16), reset_less=True)
            mult_b = Signal(signed(16), reset_less=True)
            m.d.sync += [mult_a.eq(params.mult_a), mult_b.eq(params.mult_b)]
        shifts = [Signal(6, name=f"shift{s}") for s in (1, 2, 3)]
        qs = []
        for k in range(lanes):
            a = pair[8 * k:8 * k + 8].as_signed()
            b = pair[8 * (lanes + k):8 * (lanes + k) + 8].as_signed()
            if ecp5:
                scaled_a = _ecp5_product(m, a, params.mult_a)
                scaled_b = _ecp5_product(m, b, params.mult_b)
            else:
                op_a = Signal(signed(8), name=f"op_a{k}", reset_less=True)
                op_b = Signal(signed(8), name=f"op_b{k}", reset_less=True)
                m.d.sync += [op_a.eq(a), op_b.eq(b)]
                scaled_a = _split_product(m, op_a, mult_a, f"a{k}")
                scaled_b = _split_product(m, op_b, mult_b, f"b{k}")

            total = Signal(signed(_SUM_BITS), name=f"sum{k}")
            m.d.sync += total.eq(scaled_a + scaled_b)

            q = Signal(signed(_Q_BITS), name=f"q{k}")
            m.d.sync += q.eq((total << 1) >> shifts[2])
            qs.append(q)

        kinds = [Signal(Activation, name=f"kind{s}") for s in (1, 2, 3, 4)]
        valids = [Signal(name=f"valid{s}") for s in (1, 2, 3, 4)]
        m.d.sync += [shifts[0].eq(params.shift), kinds[0].eq(params.activation),
                     valids[0].eq(flow.dp_i.valid)]
        for s in range(1, 3):
            m.d.sync += shifts[s].eq(shifts[s - 1])
        for s in range(1, 4):
            m.d.sync += [kinds[s].eq(kinds[s - 1]), valids[s].eq(valids[s - 1])]
        m.d.comb += [act.i.payload.q.eq(Cat(*qs)), act.i.payload.activation.eq(kinds[3]),
                     act.i.valid.eq(valids[3])]
        return m


def _split_product(m: Module, op: Value, mult: Value, name: str) -> Value:
    """`op * mult` (signed 8 x signed 16) as two registered 8 x 8 partial products, by the
    high (signed) and low (unsigned) byte of `mult`, whose shifted sum is left to the sum
    stage: in LUTs (no DSPs) an int8 x int16 multiplier was 13 logic levels, one stage too
    deep for 100 MHz on the ECP5; each partial product is about half of it."""
    low = Signal(signed(17), name=f"low_{name}", reset_less=True)
    high = Signal(signed(16), name=f"high_{name}", reset_less=True)
    m.d.sync += [low.eq(op * Cat(mult[:8], 0).as_signed()), high.eq(op * mult[8:].as_signed())]
    return (high << 8) + low


def _ecp5_product(m: Module, a: Value, b: Value) -> Value:
    """The signed product of `a` (signed 8) and `b` (signed 16) sampled two edges earlier,
    in one ECP5 MULT18X18D using its own A/B input registers and output register (always
    enabled): the same timing as the generic operand and product registers, with the
    operand registers inside the DSP block (Yosys 0.70 leaves registers around a multiplier
    in the fabric, hw/systolic/ecp5_dsp.py). Amaranth cannot simulate the primitive; the
    simulators elaborate with no platform and check the generic registers."""
    return registered_product(m, en=1, a=a, b=b, width=_PRODUCT_BITS)
