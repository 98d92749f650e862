"""The accelerator top level (hw/top.py) under cocotb, with cocotbext-axi's AxiRam as DRAM and
its AXI-Lite master on the registers: every scenario of test_top_bench.py (hand-written and
seeded random compiled programs against the functional model, with and without backpressure
and idle cycles on every AXI channel, and the illegal-instruction path) on Icarus with `tiny`,
on Verilator with `tiny` and, marked slow, on Verilator with `default` as issue 4 asks; plus
the same programs on Icarus from an unknown power-up state (every register and memory X).

Costs measured on the 2-core machine (CPU seconds; builds are cached per design hash in
build/cocotb/, so only the first run pays them): Icarus `tiny` builds in ~1.5 s and simulates
the bench's ~18,000 cycles in ~14 s (~1,300 cycles/s); Verilator `tiny` builds in ~45-55 s
and runs ~23,000 cycles in ~8 s; Verilator `default` builds in ~230 s (its 3.7 MB per-cycle
C++ file at -O3 alone takes minutes) and runs ~26,000 cycles in ~10 s. The power-up test
runs ~7,300 cycles on Icarus in ~9 s.
"""

import re

import pytest

from hw.config import preset
from hw.top import Top
from tests.cocotb.runner import run_cocotb
from tests.cocotb.tb import CLOCK_PERIOD_NS

BENCH = "tests.cocotb.test_top_bench"
SCENARIOS = {"handwritten_plain", "handwritten_shaped", "compiled_plain", "compiled_shaped",
             "illegal_instruction"}


def report(run, record_property) -> None:
    """Record the build and run costs and the simulated cycles in the pytest report."""
    figures = {"build_s": run.build_s, "build_cpu_s": run.build_cpu_s, "run_s": run.run_s,
               "run_cpu_s": run.run_cpu_s,
               "cycles": sum(case.cycles(CLOCK_PERIOD_NS) for case in run.cases)}
    for key, value in figures.items():
        record_property(key, value)
    print(f"{run.build_dir.name}: " + ", ".join(
        f"{key} {value:.1f}" if isinstance(value, float) else f"{key} {value}"
        for key, value in figures.items()))


# Random networks per scenario: with seeds 1-4 (plain: 1, 2; shaped: 3, 4) the first layers
# cover kernels 1, 3, 5 and strides 1, 2 (test_top_bench.random_network); 6 covers them twice.
@pytest.mark.parametrize("simulator, config_name, random_programs", [
    ("icarus", "tiny", 2),
    ("verilator", "tiny", 3),
    pytest.param("verilator", "default", 3, marks=pytest.mark.slow(
        reason="the first Verilator build of the default top takes ~4 CPU minutes "
               "(cached afterwards); `tiny` runs the same scenarios in `make test`")),
])
def test_top_bench(simulator, config_name, random_programs, record_property):
    run = run_cocotb(component=Top(config=preset(config_name)), name=f"top_{config_name}",
                     simulator=simulator, test_module=BENCH,
                     extra_env={"SYSTOLICA_CONFIG": config_name,
                                "SYSTOLICA_RANDOM_PROGRAMS": str(random_programs)})
    assert {case.name for case in run.cases if case.status == "passed"} == SCENARIOS
    report(run, record_property)


_MODULE = re.compile(r"(?=^module )", re.M)
_INITIALISED_REG = re.compile(r"^(\s*reg (?:\[[^\]]*\] )?)(\S+ ?) = [^;]*;", re.M)
_MEMORY_INIT = re.compile(r"^  initial begin\n(?:    \S+\[\d+\] = [^;]*;\n)+  end\n", re.M)


def unknown_power_up(text: str) -> str:
    """The Verilog with no initial value on any clocked register and no memory contents, so
    that Icarus starts them all at X, as an ASIC (or an FPGA without initialised registers)
    starts them unknown: only the synchronous reset may make state defined. Yosys' dummy
    `reg $auto$verilog_backend... = 0` of each `always @*` block is not clocked and stays."""
    modules, stripped = [], 0
    for module in _MODULE.split(text):
        def strip(match: re.Match) -> str:
            nonlocal stripped
            name = match.group(2).strip()
            if not re.search(r"^\s*" + re.escape(name) + r"\s*<=", module, re.M):
                return match.group(0)
            stripped += 1
            return f"{match.group(1)}{match.group(2)};"
        modules.append(_MEMORY_INIT.sub("", _INITIALISED_REG.sub(strip, module)))
    out = "".join(modules)
    if not stripped or "initial" in out:
        raise ValueError(f"unexpected Verilog: {stripped} register initial values removed, "
                         f"{out.count('initial')} initial blocks left")
    return out


def test_top_from_unknown_power_up_state_on_icarus(record_property):
    """After the 4-cycle reset the machine must not depend on any power-up value: with every
    register initial value and all memory contents removed (X in Icarus) and cocotbext-axi's
    X on idle bus payloads, programs still match the functional model, and a restart after
    an error works."""
    run = run_cocotb(component=Top(config=preset("tiny")), name="top_tiny_power_up",
                     simulator="icarus", test_module=BENCH, testcase=["handwritten_plain", "compiled_plain",
                                                   "illegal_instruction"],
                     extra_env={"SYSTOLICA_CONFIG": "tiny", "SYSTOLICA_RANDOM_PROGRAMS": "1"},
                     rewrite=unknown_power_up)
    assert [case.status for case in run.cases] == ["passed"] * 3
    report(run, record_property)
