"""Build the Verilator model of a configuration's top level once, and cache it.

The cache key is the configuration's fingerprint plus a hash of the generated Verilog, the C++
harness and the build flags, so a change to any of them rebuilds and nothing stale is reused.
Builds take a file lock: parallel test workers wait for one build instead of racing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
from pathlib import Path

from hw.config import AcceleratorConfig
from sim.toolchain import VERILATOR_OPT_FLAGS, require, tool_env

__all__ = ["HARNESS", "cache_root", "build_model"]

HARNESS = Path(__file__).with_name("harness.cpp")


def cache_root() -> Path:
    """Where built models live: $SYSTOLICA_CACHE, else ~/.cache/systolica."""
    return Path(os.environ.get("SYSTOLICA_CACHE", Path.home() / ".cache" / "systolica"))


def _flags(config: AcceleratorConfig, trace: bool) -> list[str]:
    flags = [
        "--cc", "--exe", "--build", "-j", "2", "--top-module", "top", "--prefix", "Vtop",
        "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
        # Lint is its own check (hw/lint.py with the listed waivers); the build only compiles.
        "-Wno-fatal", "-Wno-lint", "-Wno-style",
        "-CFLAGS", f"-O3 -std=c++20 -DBUS_BYTES={config.axi_data_bytes}",
        "-MAKEFLAGS", " ".join(VERILATOR_OPT_FLAGS),
        "-o", "harness",
    ]
    if trace:
        flags += ["--trace-fst", "--trace-structs"]
    return flags


def build_model(config: AcceleratorConfig, verilog: str, *, trace: bool = False) -> Path:
    """The path of the harness executable for this configuration's Verilog (built if needed)."""
    flags = _flags(config, trace)
    key = hashlib.sha256("\0".join([verilog, HARNESS.read_text(), *flags]).encode())
    folder = cache_root() / "verilator" / f"{config.name}-{config.fingerprint}-{key.hexdigest()[:16]}"
    exe = folder / "obj_dir" / "harness"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.is_file():
            return exe
        (folder / "top.v").write_text(verilog)
        result = subprocess.run([require("verilator"), *flags, "top.v", str(HARNESS)],
                                cwd=folder, env=tool_env(), capture_output=True, text=True)
        if result.returncode != 0 or not exe.is_file():
            raise RuntimeError(f"Verilator build of {config.name} failed in {folder}:\n"
                               f"{result.stdout[-4000:]}{result.stderr[-4000:]}")
    return exe
