"""Cycle-accurate run of a program on the accelerator's RTL under Verilator.

The Verilog of hw/top.py is compiled once per configuration with the C++ harness
(sim/verilator/harness.cpp: the DRAM model and an AXI4-Lite host on the C++ side, -O3) and
cached (sim/verilator/build.py). A run writes the DRAM image to a file, gives the harness a
script of register accesses (the same start/done protocol as sim/rtl_amaranth.py), and reads
back the status, the counters and the DRAM regions asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from amaranth.back import verilog

from hw.axi.csr import COUNTERS, Reg
from hw.config import AcceleratorConfig
from hw.top import Top, verilog_ports

from .dram_model import DramTiming
from .rtl_result import RtlResult, RtlTimeout
from .verilator.build import build_model, cache_root

__all__ = ["top_verilog", "run_verilator"]

_VERILOG_CACHE: dict[str, str] = {}
_HW = Path(__file__).resolve().parents[1] / "hw"


def _hardware_hash() -> str:
    """A hash of every hardware source file: the generated Verilog depends on nothing else."""
    digest = hashlib.sha256()
    for path in sorted(_HW.rglob("*.py")):
        digest.update(str(path.relative_to(_HW)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def top_verilog(config: AcceleratorConfig) -> str:
    """The Verilog of the configuration's top level (module `top`, conventional port names).

    Generating it takes about a minute for `default`, so it is cached in memory and on disk
    (under cache_root()/verilog, keyed by the config and a hash of the hw/ sources)."""
    if config.fingerprint not in _VERILOG_CACHE:
        path = cache_root() / "verilog" / f"{config.fingerprint}-{_hardware_hash()}.v"
        if path.is_file():
            text = path.read_text()
        else:
            top = Top(config=config)
            text = verilog.convert(top, name="top", ports=verilog_ports(top), emit_src=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(text)
            partial.replace(path)   # atomic: parallel workers never read half a file
        _VERILOG_CACHE[config.fingerprint] = text
    return _VERILOG_CACHE[config.fingerprint]


def run_verilator(config: AcceleratorConfig, dram: np.ndarray, *, program_address: int,
                  program_length: int, timing: DramTiming = DramTiming(),
                  max_cycles: int = 2_000_000_000, regions: list[tuple[int, int]] = (),
                  trace: str | Path | None = None) -> tuple[RtlResult, dict]:
    """Run the program already placed in `dram`. The DRAM regions (address, length) asked for
    are copied back into `dram`. Returns the result and wall-clock figures: `seconds` (the
    harness process), `harness_cycles`, and the speed of the harness's own clock loop
    (`loop_seconds`, `loop_cpu_seconds`, `cycles_per_second` = loop cycles / loop seconds, which
    leaves out process start-up, DRAM image I/O and the register accesses around the run)."""
    exe = build_model(config, top_verilog(config), trace=trace is not None)
    with tempfile.TemporaryDirectory(prefix="systolica-vl-") as tmp:
        tmp = Path(tmp)
        image = tmp / "dram.bin"
        # The image ends at its last non-zero byte (scanned as 64-bit words: 7x faster).
        words = np.flatnonzero(dram.view(np.uint64))
        used = 8 * (int(words[-1]) + 1) if len(words) else 0
        image.write_bytes(dram[:used].tobytes())
        retire_file = tmp / "retire.txt"
        lines = [f"retire_trace {retire_file}",
                 f"write {Reg.PROG_ADDR} {program_address}",
                 f"write {Reg.PROG_LEN} {program_length}",
                 f"write {Reg.IRQ_ENABLE} 1",
                 f"write {Reg.CTRL} 1",
                 f"wait_irq waited {max_cycles}",
                 f"read error_code {Reg.ERROR_CODE}",
                 f"read error_index {Reg.ERROR_INDEX}"]
        for i, name in enumerate(COUNTERS):
            lines += [f"read {name}_lo {Reg.COUNTERS + 8 * i}",
                      f"read {name}_hi {Reg.COUNTERS + 8 * i + 4}"]
        for n, (address, length) in enumerate(regions):
            lines.append(f"dump {address} {length} {tmp / f'region{n}.bin'}")
        script = tmp / "script.txt"
        script.write_text("\n".join(lines) + "\n")
        args = [str(exe), str(image), str(config.dram_bytes), str(timing.latency),
                str(timing.beat_interval(config.axi_data_bytes)), str(timing.max_outstanding),
                str(script)]
        if trace is not None:
            args.append(str(trace))
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"Verilator harness failed ({done.returncode}): "
                               f"{done.stderr[-2000:]}")
        values = json.loads(done.stdout.strip().splitlines()[-1])
        if values["waited"] < 0:
            raise RtlTimeout(f"no interrupt within {max_cycles} cycles")
        for n, (address, length) in enumerate(regions):
            dram[address:address + length] = np.frombuffer(
                (tmp / f"region{n}.bin").read_bytes(), np.uint8)
        retirements = [tuple(map(int, line.split()))
                       for line in retire_file.read_text().splitlines()]
    for name in COUNTERS:
        values[name] = values.pop(f"{name}_lo") | values.pop(f"{name}_hi") << 32
    result = RtlResult.from_registers(values, read_bytes=values["dram_read_bytes"],
                                      write_bytes=values["dram_write_bytes"],
                                      retirements=retirements)
    loop_seconds = values["loop_ns"] / 1e9
    return result, {"seconds": seconds, "harness_cycles": values["harness_cycles"],
                    "loop_cycles": values["loop_cycles"], "loop_seconds": loop_seconds,
                    "loop_cpu_seconds": values["loop_cpu_ns"] / 1e9,
                    "cycles_per_second": values["loop_cycles"] / max(loop_seconds, 1e-9)}
