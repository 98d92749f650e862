"""Side by side with SCALE-Sim 3.0.0 (issue 7 part 5): the conv layers of AlexNet, VGG-16 and
ResNet-18 (models/imagenet.py, full size) and SCALE-Sim's own AlexNet topology, on 16x16 and
32x32 weight-stationary arrays (Systolica: `default` and `large`).

SCALE-Sim runs in its own venv (bench/venv-scalesim, made by `make scalesim`) through
bench/scalesim_runner.py; a run takes minutes to hours (it steps through every cycle in Python),
so each (topology, array) result is cached under build/scalesim/ by a hash of its topology,
config and SCALE-Sim version, and later runs reuse it. Choose what to run with the environment:
SCALESIM_TOPOLOGIES (comma-separated names of bench.topologies.NETWORK_CONVS; default all but
vgg16, whose full run takes about two hours of CPU on 16x16 and far more memory than AlexNet's
5 GB: ask for it by name, or with SCALESIM_MODE=compute),
SCALESIM_ARRAYS (default "16,32") and SCALESIM_MODE: `full` (default; SCALE-Sim as its users
run it, the wall time to compare) or `compute` (its compute model only, minutes instead of hours:
the same compute cycles in bandwidth mode CALC, see bench/scalesim_runner.py). A pair shows a
full run's figures when one is cached, else a compute-only run's, else dashes.

Systolica's side comes from its cycle model (sim/perf, equal to the RTL's cycle counts) through
`SYSTOLICA_CYCLES` (program, timing) -> cycles; each layer is compiled alone for the config
and evaluated with DRAM latency 20 cycles and one AXI beat per cycle, next to the compiler's
mapping bound (chunk cycles of its tiling, no stalls).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Callable

from compiler.compile import compile_qgraph
from hw.config import preset
from hw.program import Program
from sim.dram_model import DramTiming

from ..conv_layers import ConvShape, conv_chain_graph
from ..registry import Section, benchmark
from ..scalesim_io import LAYOUT_CSV, config_text, parse_compute_report, topology_csv
from ..topologies import NETWORK_CONVS, conv_layers

__all__ = ["SYSTOLICA_CYCLES", "ARRAY_CONFIGS", "SCALESIM_VERSION", "scalesim_run",
           "systolica_layers", "scalesim", "scalesim_layers"]

def _model_cycles(program: Program, timing: DramTiming) -> int:
    from sim.perf import predict

    return predict(program, timing).cycles


#: Systolica's cycle model: (program, timing) -> total cycles of the program; None leaves the
#: cycle and utilization columns empty.
SYSTOLICA_CYCLES: Callable[[Program, DramTiming], int] | None = _model_cycles

ARRAY_CONFIGS = {16: "default", 32: "large"}
SCALESIM_VERSION = "3.0.0"
_ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = _ROOT / "bench" / "venv-scalesim" / "bin" / "python"
RUNNER = _ROOT / "bench" / "scalesim_runner.py"
CACHE = _ROOT / "build" / "scalesim"


MODES = ("full", "compute")
DEFAULT_TOPOLOGIES = tuple(t for t in NETWORK_CONVS if t != "vgg16")


def _selected() -> tuple[list[str], list[int], str]:
    topologies = [t.strip() for t in os.environ.get("SCALESIM_TOPOLOGIES",
                                                    ",".join(DEFAULT_TOPOLOGIES)).split(",")]
    arrays = [int(a) for a in os.environ.get("SCALESIM_ARRAYS", "16,32").split(",")]
    mode = os.environ.get("SCALESIM_MODE", "full")
    bad = [t for t in topologies if t not in NETWORK_CONVS] + \
          [str(a) for a in arrays if a not in ARRAY_CONFIGS] + ([mode] if mode not in MODES else [])
    if bad:
        raise ValueError(f"SCALESIM_TOPOLOGIES / SCALESIM_ARRAYS / SCALESIM_MODE: unknown "
                         f"{', '.join(bad)}; choose from {', '.join(NETWORK_CONVS)}, "
                         f"{', '.join(map(str, ARRAY_CONFIGS))} and {', '.join(MODES)}")
    return topologies, arrays, mode


def _cache_folder(topology: str, array: int, shapes: list[ConvShape], mode: str) -> Path:
    run_name = f"{topology}_ws{array}"
    key = hashlib.sha256("\0".join([topology_csv(shapes), config_text(run_name=run_name,
                                    array=array), SCALESIM_VERSION]).encode()).hexdigest()[:12]
    return CACHE / f"{run_name}-{key}" if mode == "full" else CACHE / f"{run_name}-{key}-{mode}"


def scalesim_run(topology: str, array: int, shapes: list[ConvShape], *, mode: str,
                 run: bool) -> dict | None:
    """SCALE-Sim's per-layer figures and wall time, from the cache or (when `run`) by running
    it in `mode` (MODES)."""
    folder = _cache_folder(topology, array, shapes, mode)
    result = folder / "result.json"
    if result.exists():
        return json.loads(result.read_text())
    if not run:
        return None
    if not VENV_PYTHON.exists():
        raise RuntimeError(f"{VENV_PYTHON} is missing: run `make scalesim` (it creates "
                           "SCALE-Sim's venv)")
    folder.mkdir(parents=True, exist_ok=True)
    run_name = f"{topology}_ws{array}"
    (folder / "topology.csv").write_text(topology_csv(shapes))
    (folder / "scale.cfg").write_text(config_text(run_name=run_name, array=array))
    (folder / "layout.csv").write_text(LAYOUT_CSV)
    with open(folder / "scalesim.log", "w") as log:
        done = subprocess.run([str(VENV_PYTHON), str(RUNNER), "topology.csv", "scale.cfg",
                               "layout.csv", "out"] + (["--compute-only"] if mode == "compute"
                                                       else []), cwd=folder, stdout=subprocess.PIPE,
                              stderr=log, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"SCALE-Sim failed on {run_name}; see {folder / 'scalesim.log'}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    layers = (answer["layers"] if mode == "compute" else
              [vars(layer) for layer in parse_compute_report(
                  (folder / answer["compute_report"]).read_text())])
    record = {"topology": topology, "array": array, "mode": mode, "seconds": answer["seconds"],
              "cpu_seconds": answer["cpu_seconds"], "layers": layers}
    result.write_text(json.dumps(record, indent=1) + "\n")
    return record


def systolica_layers(shapes: list[ConvShape], config_name: str) -> list[dict]:
    """Per layer: the compiler's mapping bound and, through SYSTOLICA_CYCLES, the model's
    cycles and its wall time."""
    config = preset(config_name)
    timing = DramTiming(latency=20, bytes_per_cycle=float(config.axi_data_bytes))
    rows = []
    for shape in shapes:
        program = compile_qgraph(conv_chain_graph([shape], name=shape.name), config)
        cycles, seconds = None, None
        if SYSTOLICA_CYCLES is not None:
            start = time.perf_counter()
            cycles = int(SYSTOLICA_CYCLES(program, timing))
            seconds = time.perf_counter() - start
        rows.append({"mapping_bound": sum(layer["cycles"] for layer in program.layers),
                     "cycles": cycles, "seconds": seconds})
    return rows


@functools.lru_cache(maxsize=None)
def _systolica(topology: str, config_name: str) -> tuple[dict, ...]:
    """systolica_layers of a topology, once per process (both sections use it)."""
    return tuple(systolica_layers(conv_layers(topology), config_name))


def _util(macs: int, cycles: int | None, array: int) -> float | None:
    return None if not cycles else round(100.0 * macs / (cycles * array * array), 2)


def _pairs(run: bool):
    topologies, arrays, mode = _selected()
    for topology in NETWORK_CONVS:
        shapes = conv_layers(topology)
        for array in ARRAY_CONFIGS:
            chosen = run and topology in topologies and array in arrays
            scalesim_run(topology, array, shapes, mode=mode, run=chosen)
            found = [scalesim_run(topology, array, shapes, mode=m, run=False) for m in MODES]
            yield topology, array, shapes, next((r for r in found if r), None)


@benchmark("scalesim", "Side by side with SCALE-Sim 3.0.0 (conv layers, weight-stationary)")
def scalesim() -> Section:
    rows = []
    for topology, array, shapes, ss in _pairs(run=True):
        macs = sum(s.macs for s in shapes)
        sys_layers = _systolica(topology, ARRAY_CONFIGS[array])
        sys_cycles = (sum(r["cycles"] for r in sys_layers)
                      if SYSTOLICA_CYCLES is not None else None)
        ss_cycles = sum(layer["compute_cycles"] for layer in ss["layers"]) if ss else None
        mode = ss.get("mode", "full") if ss else None
        # SCALE-Sim's own overall utilization, weighted by each layer's cycles: it counts its
        # own MACs (see the note on output sizes), so it is not recomputed from `macs`.
        ss_util = (round(sum(layer["overall_util_pct"] * layer["compute_cycles"]
                             for layer in ss["layers"]) / ss_cycles, 2) if ss else None)
        rows.append({
            "topology": topology, "array": f"{array}x{array}", "config": ARRAY_CONFIGS[array],
            "conv_layers": len(shapes), "macs": macs, "ideal_cycles": -(-macs // array ** 2),
            "scalesim_cycles": ss_cycles, "scalesim_util_pct": ss_util,
            "scalesim_mode": mode,
            "scalesim_seconds": round(ss["seconds"], 1) if mode == "full" else None,
            "scalesim_cpu_seconds": (round(ss["cpu_seconds"], 1) if mode == "full"
                                     and ss.get("cpu_seconds") is not None else None),
            "scalesim_compute_model_seconds": (round(ss["seconds"], 1) if mode == "compute"
                                               else None),
            "systolica_cycles": sys_cycles, "systolica_util_pct": _util(macs, sys_cycles, array),
            "systolica_seconds": (round(sum(r["seconds"] for r in sys_layers), 3)
                                  if sys_cycles is not None else None),
            "systolica_mapping_bound": sum(r["mapping_bound"] for r in sys_layers),
        })
    notes = [
        "SCALE-Sim: weight-stationary, InterfaceBandwidth CALC (no DRAM stalls), 64 kB "
        "SRAMs; `scalesim_cycles` sums COMPUTE_REPORT.csv's `Total Cycles` (what it prints as "
        "compute cycles); `scalesim_util_pct` is its `Overall Util %` weighted by cycles.",
        "SCALE-Sim sizes outputs as ceil((H - K + S) / S), one more row and column than the "
        "convolution has when (H - K) is not a multiple of the stride (SCALE-Sim AlexNet conv1: "
        "55x55 instead of 54x54; ResNet-18's stride-2 convolutions: 113/29/15/8 instead of "
        "112/28/14/7), so it counts more MACs there; `macs`, `ideal_cycles` and "
        "`systolica_util_pct` use the true output size.",
        "Padding: SCALE-Sim's format has none; a padded layer is given its padded input size.",
        "Issue 7 quotes 3,823,825 compute cycles (82%) for alexnet_scalesim on 16x16.",
        "`systolica_mapping_bound`: chunk cycles of the compiler's tiling (no fill, drain or "
        "stalls), a lower bound of Systolica's cycles.",
        "Run `make scalesim` (SCALESIM_TOPOLOGIES=..., SCALESIM_ARRAYS=..., SCALESIM_MODE=full|"
        "compute to choose); `scalesim_mode` compute: SCALE-Sim's compute model alone (the same "
        "compute cycles in CALC mode), whose wall time is `scalesim_compute_model_seconds`, not "
        "SCALE-Sim's run time (`scalesim_seconds`, full runs only). A dash "
        "in SCALE-Sim's columns: that pair has not been run yet; in Systolica's: the cycle "
        "model is not connected yet (bench/suites/scalesim.py SYSTOLICA_CYCLES).",
    ]
    return Section(rows=rows, notes=notes)


@benchmark("scalesim_layers", "SCALE-Sim per layer (from the cached SCALE-Sim runs)")
def scalesim_layers() -> Section:
    rows = []
    for topology, array, shapes, ss in _pairs(run=False):
        if ss is None:
            continue
        for shape, layer, sys in zip(shapes, ss["layers"],
                                     _systolica(topology, ARRAY_CONFIGS[array])):
            rows.append({"topology": topology, "array": f"{array}x{array}", "layer": shape.name,
                         "macs": shape.macs, "scalesim_cycles": layer["compute_cycles"],
                         "scalesim_util_pct": round(layer["overall_util_pct"], 2),
                         "scalesim_mode": ss.get("mode", "full"),
                         "systolica_cycles": sys["cycles"],
                         "systolica_util_pct": _util(shape.macs, sys["cycles"], array),
                         "systolica_mapping_bound": sys["mapping_bound"]})
    return Section(rows=rows, notes=["Columns as in the scalesim section, per conv layer."])
