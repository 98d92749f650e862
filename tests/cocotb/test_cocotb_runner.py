"""The cocotb bench infrastructure (runner.py, tb.py) on a real DUT: the copy engine of
dut_copy.py, on Icarus and Verilator, tiny and default configs, every scenario of
test_copy_bench.py; plus the runner's failure path and the DUT's lint."""

import pytest

from hw.config import preset
from hw.lint import lint_verilog
from tests.cocotb.dut_copy import CopyDUT
from tests.cocotb.runner import SIMULATORS, CocotbFailure, component_verilog, run_cocotb
from tests.cocotb.tb import CLOCK_PERIOD_NS

BENCH = "tests.cocotb.test_copy_bench"
SCENARIOS = {"copy_plain", "copy_backpressure", "copy_idle", "copy_rejects_bad_commands",
             "copy_page_crossing"}


def run_bench(simulator: str, config_name: str, env: dict[str, str] | None = None, **kwargs):
    return run_cocotb(component=CopyDUT(config=preset(config_name)), name=f"copy_{config_name}",
                      simulator=simulator, test_module=BENCH,
                      extra_env={"SYSTOLICA_CONFIG": config_name, **(env or {})}, **kwargs)


def report(run, record_property) -> None:
    """Record the build and run costs and the simulation speed in the pytest report."""
    cycles = sum(case.cycles(CLOCK_PERIOD_NS) for case in run.cases)
    speed = run.cycles_per_second(CLOCK_PERIOD_NS)
    figures = {"build_s": run.build_s, "build_cpu_s": run.build_cpu_s, "run_s": run.run_s,
               "run_cpu_s": run.run_cpu_s, "cycles": cycles, "cycles_per_s": speed}
    for key, value in figures.items():
        record_property(key, value)
    print(f"{run.build_dir.name}: " + ", ".join(
        f"{key} {value:.1f}" if isinstance(value, float) else f"{key} {value}"
        for key, value in figures.items()))


@pytest.mark.parametrize("config_name", ["tiny", "default"])
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_copy_bench(simulator, config_name, record_property):
    run = run_bench(simulator, config_name)
    assert {case.name for case in run.cases if case.status == "passed"} == SCENARIOS
    report(run, record_property)


@pytest.mark.slow(reason="measures simulated cycles per second on a 16,384-beat copy "
                         "(~5 s per simulator); adds no coverage over test_copy_bench")
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_copy_bench_speed(simulator, record_property):
    run = run_bench(simulator, "default", testcase="copy_long", run_name="copy-long",
                    env={"SYSTOLICA_BENCH_LONG": "1"})
    assert [case.status for case in run.cases] == ["passed"]
    report(run, record_property)


def test_failed_cocotb_test_fails_pytest():
    with pytest.raises(CocotbFailure, match="expected_failure"):
        run_bench("icarus", "tiny", testcase="expected_failure", run_name="expected-failure",
                  env={"SYSTOLICA_EXPECT_FAILURE": "1"})


@pytest.mark.parametrize("config_name", ["tiny", "default"])
def test_copy_dut_lint(config_name):
    lint_verilog(component_verilog(CopyDUT(config=preset(config_name)), toplevel="copy_dut"),
                 "copy_dut")
