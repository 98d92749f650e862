"""The element-wise unit: residual add of two rescaled int8 tensors, then activation.

Per lane: `y = act(saturate8(round_shift(a * mult_a + b * mult_b, shift)))`, bit for bit the
ADD instruction of sim/functional.py.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from .activation import ActivationUnit, lut_write_layout
from .config import AcceleratorConfig
from .isa import Activation, AddLayout
from .pass_flow import PassFlow

__all__ = ["EltwiseAdd", "eltwise_params_layout"]

_ADD_FIELDS = data.Layout.cast(AddLayout)
# a * mult_a is int8 x int16 = 24 bits, the sum of two 25, q = (2x) >> shift 26.
_SUM_BITS = 8 + 16 + 1
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

    Latency 8 cycles from an accepted `i` to its `o.valid` (`LATENCY`): products, sum,
    rounding shift, the four ActivationUnit stages, output FIFO. Throughput one word per clock,
    also across command boundaries; `i.ready` never depends on `o.ready` (hw/pass_flow.py).
    """

    # Stages (10 ns at 100 MHz on ECP5): 1 two int8 x int16 products (one MULT18X18D each;
    # registered products took the 8x8 core from 85 to 113 MHz); 2 their 25-bit sum (~13 CCU2C);
    # 3 (2x) >> shift, a 26-bit barrel shifter of 6 mux levels; 4-7 ActivationUnit.
    # Measured on the default 16 lanes (yowasp synth_ecp5 + nextpnr-ecp5 --85k, out of
    # context): 106 MHz after place and route, 32 MULT18X18D, 16 DP16KD, ~4.0k LUT4, ~2.6k FF;
    # the critical path is mult_a fanning out to the 16 lanes' multipliers (3.9 ns routing).
    DATAPATH_LATENCY = 3 + ActivationUnit.LATENCY
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
        shift1, shift2 = (Signal(6, name=f"shift{s}") for s in (1, 2))
        qs = []
        for k in range(lanes):
            a = pair[8 * k:8 * k + 8].as_signed()
            b = pair[8 * (lanes + k):8 * (lanes + k) + 8].as_signed()
            scaled_a = Signal(signed(24), name=f"scaled_a{k}")
            scaled_b = Signal(signed(24), name=f"scaled_b{k}")
            m.d.sync += [scaled_a.eq(a * params.mult_a), scaled_b.eq(b * params.mult_b)]

            total = Signal(signed(_SUM_BITS), name=f"sum{k}")
            m.d.sync += total.eq(scaled_a + scaled_b)

            q = Signal(signed(_Q_BITS), name=f"q{k}")
            m.d.sync += q.eq((total << 1) >> shift2)
            qs.append(q)

        kinds = [Signal(Activation, name=f"kind{s}") for s in (1, 2, 3)]
        valids = [Signal(name=f"valid{s}") for s in (1, 2, 3)]
        m.d.sync += [shift1.eq(params.shift), shift2.eq(shift1),
                     kinds[0].eq(params.activation), valids[0].eq(flow.dp_i.valid)]
        for s in range(1, 3):
            m.d.sync += [kinds[s].eq(kinds[s - 1]), valids[s].eq(valids[s - 1])]
        m.d.comb += [act.i.payload.q.eq(Cat(*qs)), act.i.payload.activation.eq(kinds[2]),
                     act.i.valid.eq(valids[2])]
        return m
