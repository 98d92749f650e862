"""Bus errors on the accelerator top level under cocotb (tests/cocotb/test_bus_error_bench.py):
cocotbext-axi's AxiRam answers SLVERR for a LOAD's data, an instruction word or a STORE's
target; the run must end with BUS_ERROR and the next start must run cleanly.

The build folder is the one of test_top_cocotb.py's `tiny` top (`top_tiny-<simulator>`), so a
build made by either test is reused by the other; the results go to `bus_error.xml` there.
Measured on the 2-core machine with the builds cached: Icarus and Verilator each simulate
the ~2,000 cycles of the three scenarios (12 runs) in ~10 s wall, ~6 CPU s, most of it
start-up; an uncached Verilator `tiny` build adds ~50 s (shared with test_top_cocotb.py).
"""

import pytest

from hw.config import preset
from hw.top import Top
from tests.cocotb.runner import run_cocotb
from tests.cocotb.test_top_cocotb import report

SCENARIOS = {"bus_error_load", "bus_error_fetch", "bus_error_store"}


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_bus_error_bench(simulator, record_property):
    run = run_cocotb(component=Top(config=preset("tiny")), name="top_tiny", simulator=simulator,
                     test_module="tests.cocotb.test_bus_error_bench", run_name="bus_error",
                     extra_env={"SYSTOLICA_CONFIG": "tiny"})
    assert {case.name for case in run.cases if case.status == "passed"} == SCENARIOS
    report(run, record_property)
