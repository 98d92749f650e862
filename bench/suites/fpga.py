"""FPGA synthesis, place and route of every board (issue 8): resources and Fmax.

Runs `systolica.synth.run_synth` for each board in hw/boards/boards.py with its preset, into
build/synth/<board>/ (the same folder and report as `make synth BOARD=...`), one after the
other: about 15 minutes for the OrangeCrab 25F, 4 for the iCEBreaker (it stops at placement:
the design does not fit) and 40-90 for the ULX3S on the 2-core machine. `make bench
ONLY=fpga` runs only this; the figures and the critical paths behind them are discussed in
docs/fpga.md.
"""

from __future__ import annotations

from pathlib import Path

from hw.boards.boards import BOARDS
from systolica.synth import run_synth

from ..registry import Section, benchmark

__all__ = ["fpga", "OUT_DIR"]

OUT_DIR = Path(__file__).resolve().parents[2] / "build" / "synth"
SEED = 1


def _share(resource) -> str:
    return f"{resource.used}/{resource.available} ({100 * resource.share:.0f}%)"


@benchmark("fpga", "FPGA builds: resources and Fmax per board (Yosys + nextpnr, seed 1)")
def fpga() -> Section:
    rows = []
    for name, board in BOARDS.items():
        report = run_synth(name, out_dir=OUT_DIR / name, seed=SEED)
        rows.append({
            "board": name, "config": board.preset, "part": board.part,
            **{kind: _share(r) for kind, r in report.resources.items()},
            "fmax_mhz": round(report.fmax_mhz, 1) if report.fits else None,
            "target_mhz": report.target_mhz,
            "peak_gops": round(report.peak_gops, 2) if report.fits else None,
            "fits": report.fits,
            "seconds": round(report.seconds.get("total", 0.0)),
        })
    return Section(rows, notes=[
        f"Placement seed {SEED}. LUT, FF, DSP and BRAM are nextpnr's packed counts as "
        "used/available (share of the part); a design that does not fit has no Fmax (its "
        "counts are what placement needed).",
        "Fmax is what nextpnr's timing analysis reports after routing; it moves by several MHz "
        "between placement seeds and commits (docs/fpga.md, 'Timing work').",
        "Reports with the logs: build/synth/<board>/report.{json,md}.",
    ])
