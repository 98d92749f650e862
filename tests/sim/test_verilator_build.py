"""The Verilator build's registered reset: the wrapper keeps every port and lints clean.

That the design still sees the same reset cycles is checked end to end by
tests/hw/test_top.py (Verilator equals Amaranth cycle for cycle)."""

import re

import pytest

from hw.config import preset
from hw.lint import lint_verilog
from sim.rtl_verilator import top_verilog
from sim.verilator.build import registered_reset

TINY = preset("tiny")


def _ports(verilog: str, module: str) -> list[str]:
    head = re.search(rf"^module {module}\((.*?)\);", verilog, re.S | re.M)
    return [p.strip() for p in head.group(1).split(",")]


def test_registered_reset_keeps_the_ports_and_lints_clean():
    verilog = top_verilog(TINY)
    wrapped = registered_reset(verilog)
    assert _ports(wrapped, "top") == _ports(verilog, "top") == _ports(wrapped, "top_core")
    assert "always @(posedge clk) rst_q <= rst;" in wrapped
    lint_verilog(wrapped, "top")


def test_registered_reset_needs_a_top_module_with_rst():
    with pytest.raises(ValueError, match="module named `top`"):
        registered_reset("module other(clk);\n  input clk;\nendmodule\n")
    with pytest.raises(ValueError, match="input rst"):
        registered_reset("module top(clk);\n  input clk;\nendmodule\n")
