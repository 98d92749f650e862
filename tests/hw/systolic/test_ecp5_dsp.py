# amaranth: UnusedElaboratable=no
"""The PE elaborated for an ECP5 board multiplies in one MULT18X18D with its own input and
output registers (clock enable = the PE's `en`); with no platform it keeps the generic
registers the simulators check (tests/hw/systolic/test_pe.py)."""

import re

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal, signed
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hw.systolic.ecp5_dsp import registered_product, uses_ecp5_dsps
from hw.systolic.pe import ProcessingElement


def _pe_rtlil(platform) -> str:
    pe = ProcessingElement(contexts=16, psum_in_bits=16, psum_out_bits=17)
    return rtlil.convert(pe, platform=platform, emit_src=False)


def test_ecp5_pe_uses_the_dsp_registers():
    text = _pe_rtlil(ULX3S_85F_Platform())
    assert text.count("cell \\MULT18X18D ") == 1
    for reg in ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"):
        assert re.search(rf'parameter \\{reg} "CLK0"', text), reg
    assert re.search(r'parameter \\REG_PIPELINE_CLK "NONE"', text)
    assert re.search(r"connect \\CE0 \\en\b", text)


def test_other_platforms_keep_the_generic_multiplier():
    assert not uses_ecp5_dsps(None) and not uses_ecp5_dsps(ICEBreakerPlatform())
    assert "MULT18X18D" not in _pe_rtlil(None)
    assert "MULT18X18D" not in _pe_rtlil(ICEBreakerPlatform())


def test_an_ecp5_board_with_fabric_multipliers_keeps_the_generic_multiplier():
    platform = ULX3S_85F_Platform()
    platform.fabric_multipliers = True
    assert not uses_ecp5_dsps(platform)
    text = _pe_rtlil(platform)
    assert "MULT18X18D" not in text and text.count("cell $mul ") == 1


def test_registered_product_checks_its_widths():
    m = Module()
    with pytest.raises(ValueError, match="width must be 1..36"):
        registered_product(m, en=1, a=Signal(signed(8)), b=Signal(signed(8)), width=40)
    with pytest.raises(ValueError, match="at most 18 bits, not 20 and 8"):
        registered_product(m, en=1, a=Signal(signed(20)), b=Signal(signed(8)))
    product = registered_product(m, en=1, a=Signal(signed(8)), b=Signal(signed(16)), width=24)
    assert product.shape() == signed(24)
    rtlil.convert(m, ports=[product])      # the instance elaborates
