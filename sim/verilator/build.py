"""Build the Verilator model of a configuration's top level once, and cache it.

The cache key is the configuration's fingerprint plus a hash of the generated Verilog, the C++
harness and the build flags, so a change to any of them rebuilds and nothing stale is reused.
Builds take a file lock: parallel test workers wait for one build instead of racing.

The model's `rst` input goes through one register (`registered_reset`). Every Amaranth
register with a reset has its next value computed as `rst ? init : next` in a combinational
block, and Verilator evaluates everything that depends on a top-level input in its
input-combinational region (`_ico_sequent`), which runs on every `eval()`, twice per clock,
on top of the evaluation after the edge: 464 registers' next values for `default`, 16% of
the model's time. With `rst` a register they are functions of state alone and are computed
once per clock (default model: 274,000 -> 306,000 simulated cycles per CPU second). The
harness asserts `rst` one cycle earlier, so the design sees the same four reset cycles.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from hw.config import AcceleratorConfig
from sim.toolchain import VERILATOR_OPT_FLAGS, require, tool_env

__all__ = ["HARNESS", "MODEL_COMPILERS", "cache_root", "model_compiler", "registered_reset",
           "build_model"]

HARNESS = Path(__file__).with_name("harness.cpp")


def cache_root() -> Path:
    """Where built models live: $SYSTOLICA_CACHE, else ~/.cache/systolica."""
    return Path(os.environ.get("SYSTOLICA_CACHE", Path.home() / ".cache" / "systolica"))


def registered_reset(verilog: str) -> str:
    """The Verilog with its module `top` renamed `top_core` and a new `top` with the same ports
    that registers `rst` (initially 1) in front of it: the design sees `rst` one clock late."""
    head = re.search(r"^module top\((.*?)\);\n", verilog, re.S | re.M)
    if head is None:
        raise ValueError("expected a Verilog module named `top` (Amaranth's verilog.convert "
                         "with name='top'), found none")
    end = verilog.find("\nendmodule", head.end())
    decls = re.findall(r"^  (?:input|output)\b[^;]*;$", verilog[head.end():end], re.M)
    if not any(re.fullmatch(r"  input rst;", d) for d in decls):
        raise ValueError(f"expected a 1-bit `input rst;` in module `top`, found ports {decls}")
    wrapper = "\n".join([
        f"module top({head.group(1)});", *decls,
        "  reg rst_q = 1'h1;",
        "  always @(posedge clk) rst_q <= rst;",
        "  top_core core (.rst(rst_q), .*);",
        "endmodule", ""])
    rest = verilog[head.start() + len("module top("):]
    return f"{verilog[:head.start()]}module top_core({rest}\n{wrapper}"


#: C++ compilers for the model, preferred first. clang++ 14 made the default model simulate
#: ~22% faster than g++ 12 at -O3 (one 3x3 layer: 498,000 against 406,000 cycles per CPU
#: second, docs/performance.md) and compiles it in a third of the time; `make install`
#: installs it (Debian package clang). g++ is the fallback where clang is missing.
MODEL_COMPILERS = ("clang++", "clang++-14", "g++")


def model_compiler() -> str:
    """The path of the C++ compiler the Verilated models are built with."""
    path = tool_env()["PATH"]
    for name in MODEL_COMPILERS:
        found = shutil.which(name, path=path)
        if found:
            return found
    return require(MODEL_COMPILERS[-1])   # the error names the missing compiler


def _cpu() -> str:
    """The host CPU's model and feature flags (a model built with -march=native runs only
    where they match)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    wanted = [line for line in lines if line.startswith(("model name", "flags"))][:2]
    return "\n".join([platform.machine(), *wanted])


def _flags(config: AcceleratorConfig, trace: bool) -> list[str]:
    cxx = model_compiler()
    # With g++, -fno-tree-vectorize: without its (SLP) vectorization of the Verilated
    # straight-line code the default model ran 12% faster (306,000 -> 345,000 cycles per CPU
    # second), and -march=native was 8% slower. With clang, vectorizing and -march=native
    # are faster (+2%, +6.5%: 500,000 -> 533,000 on one layer); the model is built for the
    # machine that runs it, and the CPU is part of the cache key (`build_model`).
    tuning = " -march=native" if "clang" in Path(cxx).name else " -fno-tree-vectorize"
    flags = [
        "--cc", "--exe", "--build", "-j", "2", "--top-module", "top", "--prefix", "Vtop",
        "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
        # Lint is its own check (hw/lint.py with the listed waivers); the build only compiles.
        "-Wno-fatal", "-Wno-lint", "-Wno-style",
        # One evaluation function instead of ~20,000-statement pieces: the shadow copies of
        # registers become locals GCC keeps out of memory (+4%, 369,900 -> 385,100 cycles
        # per CPU second on the default model).
        "--output-split", "0", "--output-split-cfuncs", "0",
        "-CFLAGS", f"-O3{tuning} -std=c++20 -DBUS_BYTES={config.axi_data_bytes}",
        "-MAKEFLAGS", " ".join((*VERILATOR_OPT_FLAGS, f"CXX={cxx}", f"LINK={cxx}")),
        # Verilator's runtime uses std::atomic queries that clang leaves to libatomic.
        "-LDFLAGS", "-latomic",
        "-o", "harness",
    ]
    if trace:
        flags += ["--trace-fst", "--trace-structs"]
    return flags


def build_model(config: AcceleratorConfig, verilog: str, *, trace: bool = False) -> Path:
    """The path of the harness executable for this configuration's Verilog (built if needed)."""
    flags = _flags(config, trace)
    verilog = registered_reset(verilog)
    key = hashlib.sha256("\0".join([verilog, HARNESS.read_text(), *flags, _cpu()]).encode())
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
