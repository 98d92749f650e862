"""The Verilator build: the registered reset's wrapper keeps every port and lints clean, and
the model's C++ compiler is clang++ where installed, else g++, each with its flags.

That the design still sees the same reset cycles is checked end to end by
tests/hw/test_top.py (Verilator equals Amaranth cycle for cycle)."""

import re

import pytest

from hw.config import preset
from hw.lint import lint_verilog
from sim.rtl_verilator import top_verilog
from sim.verilator import build
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


def test_model_compiler_prefers_clang_and_sets_its_flags(monkeypatch):
    found = {"g++": "/usr/bin/g++", "clang++-14": "/usr/bin/clang++-14"}
    monkeypatch.setattr(build.shutil, "which", lambda name, path=None: found.get(name))
    assert build.model_compiler() == "/usr/bin/clang++-14"
    flags = build._flags(TINY, trace=False)
    make = flags[flags.index("-MAKEFLAGS") + 1]
    assert "CXX=/usr/bin/clang++-14" in make and "LINK=/usr/bin/clang++-14" in make
    assert "-march=native" in flags[flags.index("-CFLAGS") + 1]
    assert "-fno-tree-vectorize" not in flags[flags.index("-CFLAGS") + 1]

    del found["clang++-14"]
    assert build.model_compiler() == "/usr/bin/g++"
    assert "-fno-tree-vectorize" in build._flags(TINY, trace=False)[
        flags.index("-CFLAGS") + 1]

    found.clear()
    with pytest.raises(RuntimeError, match="'g\\+\\+' is not installed"):
        build.model_compiler()
