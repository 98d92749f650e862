"""Verilog generation and `verilator --lint-only -Wall` for any Amaranth component.

Waivers live in one file, hw/lint_waivers.vlt, each with its reason.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from amaranth.back import verilog

__all__ = ["WAIVERS", "to_verilog", "lint_verilog", "LintError"]

WAIVERS = Path(__file__).with_name("lint_waivers.vlt")


class LintError(RuntimeError):
    """Verilator reported lint warnings or errors; the message holds its output."""


def to_verilog(component, name: str) -> str:
    return verilog.convert(component, name=name, emit_src=False)


def lint_verilog(text: str, top: str) -> None:
    """Raise LintError unless Verilator's -Wall lint passes with the project's waivers."""
    from sim.toolchain import require, tool_env

    with tempfile.TemporaryDirectory(prefix="systolica-lint-") as tmp:
        src = Path(tmp) / f"{top}.v"
        src.write_text(text)
        result = subprocess.run(
            [require("verilator"), "--lint-only", "-Wall", "--top-module", top, str(WAIVERS),
             str(src)],
            capture_output=True, text=True, env=tool_env(), cwd=tmp)
    if result.returncode != 0:
        raise LintError(f"verilator lint of {top} failed:\n{result.stderr}{result.stdout}")
