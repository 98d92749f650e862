# amaranth: UnusedElaboratable=no
"""The out-of-context harness of systolica/synth_block.py elaborates to RTLIL with every
block port at the boundary (synthesis itself takes minutes and is not run here)."""

import pytest
from amaranth.back import rtlil
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hw.config import preset
from systolica.synth_block import block_harness


def test_harness_elaborates_with_a_clock_per_block():
    m, ports = block_harness(preset("tiny"))
    text = rtlil.convert(m, ports=ports, name="top")
    for name in ("win_clk", "pool_clk", "post_clk", "add_clk", "window__cmd__payload",
                 "pooling__o__payload", "post__o__payload", "eltwise__o__payload",
                 "add_ibuf_reader__a__payload"):
        assert f"\\{name}\n" in text, name
    assert "MULT18X18D" not in text


def test_add_block_alone_uses_the_ecp5_multiplier_registers():
    config = preset("tiny")
    m, ports = block_harness(config, ("add",))
    text = rtlil.convert(m, ports=ports, name="top", platform=ULX3S_85F_Platform())
    assert "\\win_clk\n" not in text and "\\add_clk\n" in text
    assert text.count("cell \\MULT18X18D ") == 2 * config.lanes


def test_harness_rejects_unknown_blocks():
    with pytest.raises(ValueError, match="non-empty selection"):
        block_harness(preset("tiny"), ("systolic",))
