"""One processing element of the weight-stationary systolic array.

The PE holds two banks of `contexts` int8 weights in a small memory (LUT RAM on an FPGA),
addressed by `Cat(context, bank)`. A chunk lane arrives from the left; the PE forwards it to
the right one cycle later, reads its weight at the context and bank of the lane's chunk (which
the array delivers on `context_in`/`bank_in` from one delay line per anti-diagonal: every PE
of a diagonal sees the same chunk in the same cycle), multiplies and adds the product to the
partial sum that comes from the PE above.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from .ecp5_dsp import registered_product, uses_ecp5_dsps

__all__ = ["ProcessingElement", "PRODUCT_BITS", "psum_bits", "context_bits"]

#: An int8 x int8 product: -128 * -128 = 16384 needs 16 signed bits.
PRODUCT_BITS = 16


def psum_bits(products: int) -> int:
    """Signed width that holds any sum of `products` int8 x int8 products exactly
    (|sum| <= products * 2**14)."""
    if isinstance(products, bool) or not isinstance(products, int) or products < 1:
        raise ValueError(f"products must be a positive integer, not {products!r}")
    return PRODUCT_BITS + ceil_log2(products)


def context_bits(contexts: int) -> int:
    """Width of a context index 0 .. contexts-1 (at least 1 bit)."""
    return bits_for(contexts - 1)


class ProcessingElement(wiring.Component):
    """Multiply-accumulate cell with two banks of `contexts` weight contexts.

    Parameters (keyword-only)
    -------------------------
    contexts : weight contexts per bank (1..127).
    psum_in_bits, psum_out_bits : signed widths of the partial sum from above and to below.

    Ports
    -----
    en : In(1)
        Pipeline advance (global clock enable). Every register below holds while it is low;
        the weight write port does not depend on it.
    a_in, context_in, bank_in : In
        Activation lane (int8), context index and bank of the chunk entering this cycle.
    a_out : Out(signed(8))
        `a_in` one advance later (to the PE on the right).
    psum_in : In(signed(psum_in_bits))
        Partial sum from the PE above; it must belong to the chunk that entered 2 advances ago.
    psum_out : Out(signed(psum_out_bits))
        `psum_in + a * w`, registered: valid 3 advances after the chunk's `a_in`.
    w_en, w_addr, w_data : In
        Weight write port: `w_data` is written to `Cat(context, bank)` = `w_addr` at the clock
        edge of a cycle with `w_en` high (one cycle, independent of `en`). A read and a write
        of the same address in one cycle read the old weight.

    Latency and throughput
    ----------------------
    One chunk lane per advance. Horizontal: 1 cycle (a_in -> a_out). Multiply-add: 3 stages,
    weight read (synchronous, so the memory can be LUT RAM with an output register), product
    register, sum register; registering the product took an 8x8 core from 85 to 113 MHz on
    ECP5 (TOOLCHAIN.md), and the add of the next stage then only sees a 16-bit register.
    Measured with this PE (Yosys 0.70 synth_ecp5, nextpnr-ecp5 0.11, LFE5U-85F): the 4x4
    core 129 MHz; the 8x8 core 90-99 MHz depending on the placement seed, its critical path
    always fabric register -> MULT18X18D -> fabric register with both registers placed
    ~35 rows from the DSP (4.5 ns logic, 6.5 ns routing), not the clock enable. Elaborated
    for an ECP5 platform, the three multiply registers are the DSP's own
    (hw/systolic/ecp5_dsp.py); same latency, same values.
    """

    def __init__(self, *, contexts: int, psum_in_bits: int, psum_out_bits: int) -> None:
        if isinstance(contexts, bool) or not isinstance(contexts, int) or not 1 <= contexts <= 127:
            raise ValueError(f"contexts must be an integer from 1 to 127, not {contexts!r}")
        for name, value in (("psum_in_bits", psum_in_bits), ("psum_out_bits", psum_out_bits)):
            if isinstance(value, bool) or not isinstance(value, int) or value < PRODUCT_BITS:
                raise ValueError(f"{name} must be an integer of at least {PRODUCT_BITS}, "
                                 f"not {value!r}")
        self.contexts = contexts
        ctx = context_bits(contexts)
        super().__init__({
            "en": In(1),
            "a_in": In(signed(8)),
            "context_in": In(unsigned(ctx)),
            "bank_in": In(1),
            "a_out": Out(signed(8)),
            "psum_in": In(signed(psum_in_bits)),
            "psum_out": Out(signed(psum_out_bits)),
            "w_en": In(1),
            "w_addr": In(unsigned(ctx + 1)),
            "w_data": In(signed(8)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        ctx = context_bits(self.contexts)
        m.submodules.weights = weights = Memory(shape=signed(8), depth=2 << ctx, init=[])
        write = weights.write_port()
        m.d.comb += [
            write.en.eq(self.w_en),
            write.addr.eq(self.w_addr),
            write.data.eq(self.w_data),
        ]
        if uses_ecp5_dsps(platform):
            # The DSP's B input register is the weight read register (same timing: it holds
            # the old weight when written in the same cycle), its A register the held activation, its
            # output register `product` (hw/systolic/ecp5_dsp.py).
            read = weights.read_port(domain="comb")
            m.d.comb += read.addr.eq(Cat(self.context_in, self.bank_in))
        else:
            read = weights.read_port()
            m.d.comb += [read.en.eq(self.en), read.addr.eq(Cat(self.context_in, self.bank_in))]
        # Data registers need no reset (valid flags travel beside the array, in the core):
        # that keeps the reset net off the R x C x ~40 pipeline flip-flops.
        a_out = Signal(signed(8), reset_less=True)
        psum_out = Signal.like(self.psum_out, reset_less=True)
        if uses_ecp5_dsps(platform):
            product = registered_product(m, en=self.en, a=self.a_in, b=read.data)
        else:
            # The forwarded lane `a_out` is the activation held one advance beside the
            # synchronous weight read (one register serves both: fewer signals per PE made
            # the Verilated model faster, docs/performance.md).
            product = Signal(signed(PRODUCT_BITS), reset_less=True)
            with m.If(self.en):
                m.d.sync += product.eq(a_out * read.data)
        with m.If(self.en):
            m.d.sync += [
                a_out.eq(self.a_in),
                psum_out.eq(self.psum_in + product),
            ]
        m.d.comb += [
            self.a_out.eq(a_out),
            self.psum_out.eq(psum_out),
        ]
        return m

