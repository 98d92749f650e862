"""An int8 x int8 product in one ECP5 MULT18X18D that uses the DSP's own registers.

Yosys 0.70's `synth_ecp5` maps a multiplier to MULT18X18D but leaves the registers around it
in the fabric; nextpnr then placed them ~35 rows from the DSP and the 8x8 core's critical path
was fabric register -> DSP -> fabric register with 6.5 ns of routing (90-99 MHz, see
hw/systolic/pe.py). Here the A and B input registers and the output register are the DSP's
(REG_INPUTA/REG_INPUTB/REG_OUTPUT on CLK0, clock enable CE0), so that path stays inside the
DSP block.

`registered_product(m, en=, a=, b=)` returns a signed(16) value: the product of the `a` and
`b` (signed 8) sampled at the last two advances (cycles with `en` high): inputs registered at
one advance, product registered at the next, the same 2-register timing as the generic
held activation (`a_out`) / synchronous weight read / `product` registers of the PE. Only
for ECP5 platforms that take DSP primitives (`uses_ecp5_dsps(platform)`): Amaranth cannot
simulate the primitive, so the PE uses it only when elaborated for such a board (the
simulators elaborate with no platform).
"""

from amaranth import Signal, signed
from amaranth.hdl import ClockSignal, Instance

__all__ = ["registered_product", "uses_ecp5_dsps"]


def uses_ecp5_dsps(platform) -> bool:
    """Elaborating for an ECP5 platform that takes the explicit DSP primitives. A board whose
    part has too few DSPs sets `platform.fabric_multipliers = True`: the generic multipliers
    are then left for the synthesis flow to place (in LUTs, hw/boards/boards.py)."""
    return (getattr(platform, "family", None) == "ecp5"
            and not getattr(platform, "fabric_multipliers", False))


def registered_product(m, *, en, a, b, width: int = 16):
    """The signed(`width`) product of signed `a` and `b` (at most 18 bits each) with the
    timing above; `en` is the DSP's clock enable (1: always enabled)."""
    if not 1 <= width <= 36:
        raise ValueError(f"width must be 1..36 bits of the 36-bit product, not {width!r}")
    product = Signal(signed(width))
    p = Signal(36)
    a18, b18 = a.as_signed(), b.as_signed()
    if len(a18) > 18 or len(b18) > 18:
        raise ValueError(f"operands must be at most 18 bits, not {len(a18)} and {len(b18)}")
    ports = {}
    for i in range(18):
        # Sign-extend the int8 operands to the DSP's 18-bit signed inputs.
        ports[f"i_A{i}"] = a18[min(i, len(a18) - 1)]
        ports[f"i_B{i}"] = b18[min(i, len(b18) - 1)]
        ports[f"i_C{i}"] = 0
    for i in range(36):
        ports[f"o_P{i}"] = p[i]
    m.submodules += Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
        p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
        p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
        p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
        p_CLK0_DIV="ENABLED", p_GSR="DISABLED", p_RESETMODE="SYNC",
        p_MULT_BYPASS="DISABLED", p_SOURCEB_MODE="B_SHIFT", p_CAS_MATCH_REG="FALSE",
        i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
        i_CLK0=ClockSignal("sync"), i_CLK1=0, i_CLK2=0, i_CLK3=0,
        i_CE0=en, i_CE1=0, i_CE2=0, i_CE3=0,
        i_RST0=0, i_RST1=0, i_RST2=0, i_RST3=0,
        **ports)
    m.d.comb += product.eq(p[:width])
    return product
