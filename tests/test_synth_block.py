# amaranth: UnusedElaboratable=no
"""The out-of-context harness of systolica/synth_block.py elaborates to RTLIL with every
block port at the boundary (synthesis itself takes minutes and is not run here)."""

from amaranth.back import rtlil

from hw.config import preset
from systolica.synth_block import block_harness


def test_harness_elaborates_with_a_clock_per_block():
    m, ports = block_harness(preset("tiny"))
    text = rtlil.convert(m, ports=ports, name="top")
    for name in ("win_clk", "pool_clk", "post_clk", "window__cmd__payload",
                 "pooling__o__payload", "post__o__payload"):
        assert f"\\{name}\n" in text, name
