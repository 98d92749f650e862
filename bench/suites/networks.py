"""Whole seed networks on `default` and `large` from the cycle model, and big layers of them on
the Verilator RTL (issue 7: whole-network benchmarks and the targets).

`networks`: LeNet-5, AlexNet, VGG-16, ResNet-18, ResNet-50, NIN and GoogLeNet at full size
(models/imagenet.py, seeded random weights, batch 1) compiled through the `systolica compile`
path (bench/networks.py; programs cached under build/networks/) and evaluated with
sim.perf.predict, which equals the RTL's cycle counts, with DRAM latency 20 cycles and 8 bytes
per cycle per direction. `network_layers`: the 3x3 convolutions of VGG-16 and ResNet-18 inside
those whole-network runs on `default`, from the model's per-layer spans; `network_kinds`: the
cycles of every network on `default` by kind of layer.
`network_layers_rtl`: layers of ResNet-18 and AlexNet compiled alone (and one residual block
through the ONNX path) run on the Verilator RTL next to the model's prediction.

Targets (issue 7, `default`, 8 B/cycle): every VGG-16 and ResNet-18 3x3 layer >= 90% array
utilization, whole networks >= 80%; ResNet-18 on `large` >= 3.5x faster than on `default`.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

from compiler.compile import compile_qgraph
from hw.config import AcceleratorConfig, preset
from hw.program import Program
from sim.dram_model import DramTiming
from sim.perf import PerfResult, predict

from ..conv_layers import ConvShape, conv_chain_graph
from ..networks import (CALIBRATION_IMAGES, NETWORKS, cached_program, compile_module,
                        compulsory_bytes, conv_shapes, dram_traffic, layer_cycles, pct)
from ..registry import Section, benchmark

__all__ = ["CONFIGS", "TIMING", "LAYER_NETWORKS", "RTL_LAYERS", "SPEEDUP_BANDWIDTHS",
           "network_row", "layer_rows", "kind_rows", "networks", "network_layers",
           "network_kinds", "network_layers_rtl"]

CONFIGS = ("default", "large")
TIMING = DramTiming(latency=20, bytes_per_cycle=8.0)
#: Networks whose 3x3 layers the utilization target names.
LAYER_NETWORKS = ("vgg16", "resnet18")
_STALLS = ("load_wait", "store_wait", "weight_load", "dependency_wait")


@dataclass
class _Evaluated:
    program: Program | None
    compile_seconds: float | None
    cached: bool
    result: PerfResult | None
    model_seconds: float | None
    error: str | None = None


@functools.lru_cache(maxsize=None)
def _evaluate(network: str, config_name: str) -> _Evaluated:
    """Compile (or load from the cache) and predict once per process: several sections use it."""
    from compiler.errors import CompileError

    try:
        program, compile_seconds, cached = cached_program(network, preset(config_name))
    except CompileError as exc:
        return _Evaluated(None, None, False, None, None, error=f"CompileError: {exc}")
    start = time.perf_counter()
    result = predict(program, TIMING)
    return _Evaluated(program, compile_seconds, cached, result, time.perf_counter() - start)


def network_row(network: str, program: Program, result: PerfResult, *,
                compile_seconds: float | None, cached: bool,
                model_seconds: float | None) -> dict:
    """The `networks` row of a compiled program and its prediction."""
    config = program.config
    macs = sum(layer["macs"] for layer in program.layers)
    cycles, counters = result.cycles, result.counters
    read, write = dram_traffic(program)
    minimum = compulsory_bytes(program)
    return {
        "network": network, "config": config.name, "macs": macs,
        "instructions": len(program.instructions), "cycles": cycles,
        "busy_pct": pct(counters["array_busy"], cycles),
        "mac_util_pct": pct(macs, cycles * config.peak_macs_per_cycle),
        **{f"{name}_pct": pct(counters[name], cycles) for name in _STALLS},
        "dram_read_bytes": read, "dram_write_bytes": write, "compulsory_bytes": minimum,
        "traffic_x_compulsory": round((read + write) / minimum, 2),
        "layerwise_min_bytes": sum(layer["compulsory_bytes"] for layer in program.layers),
        "clock_mhz": config.clock_mhz,
        "images_per_s": round(config.clock_mhz * 1e6 / cycles, 2),
        "compile_s": None if compile_seconds is None else round(compile_seconds, 1),
        "compile_cached": cached,
        "model_s": None if model_seconds is None else round(model_seconds, 2),
    }


def layer_rows(network: str, program: Program, result: PerfResult, *,
               kernel: int = 3) -> list[dict]:
    """Per convolution with a `kernel`-sized window: its shape, MACs, the compiler's mapping
    bound, the cycles the model attributes to it and its span, and the utilizations."""
    config = program.config
    shapes = conv_shapes(program)
    attributed = layer_cycles(result.layers)
    rows = []
    for layer, span, cycles in zip(program.layers, result.layers, attributed):
        shape = shapes.get(layer["name"])
        if shape is None or shape.kernel != kernel:
            continue
        peak = config.peak_macs_per_cycle
        rows.append({
            "network": network, "config": config.name, "layer": layer["name"],
            "shape": f"{shape.in_channels}@{shape.height}x{shape.width} -> "
                     f"{shape.out_channels}, {kernel}x{kernel}/{shape.stride}",
            "macs": layer["macs"], "mapping_bound": layer["cycles"],
            "span_cycles": span["cycles"], "cycles": cycles,
            "mac_util_pct": pct(layer["macs"], cycles * peak),
            "span_util_pct": pct(layer["macs"], span["cycles"] * peak),
        })
    return rows


#: Other DRAM bandwidths (bytes per cycle) the `large` / `default` speedup is evaluated at.
SPEEDUP_BANDWIDTHS = (16.0, 32.0)


def _speedups(network: str) -> str:
    """The `large` / `default` cycle ratio of `network` at SPEEDUP_BANDWIDTHS (same latency)."""
    parts = []
    for bandwidth in SPEEDUP_BANDWIDTHS:
        timing = DramTiming(latency=TIMING.latency, bytes_per_cycle=bandwidth)
        default, large = (predict(_evaluate(network, name).program, timing).cycles
                          for name in CONFIGS)
        parts.append(f"{default / large:.2f}x at {bandwidth:g} B/cycle ({default:,} vs "
                     f"{large:,} cycles)")
    return "with more DRAM bandwidth: " + ", ".join(parts)


@benchmark("networks", "Whole networks from the cycle model (default and large, 8 B/cycle)")
def networks() -> Section:
    rows, failures = [], []
    for config_name in CONFIGS:
        for network in NETWORKS:
            done = _evaluate(network, config_name)
            if done.error is not None:
                failures.append(f"{network} on `{config_name}` does not compile: {done.error}")
                rows.append({"network": network, "config": config_name})
                continue
            rows.append(network_row(network, done.program, done.result,
                                    compile_seconds=done.compile_seconds, cached=done.cached,
                                    model_seconds=done.model_seconds))
    cycles = {(r["network"], r["config"]): r.get("cycles") for r in rows}
    configs = [preset(name) for name in CONFIGS]
    notes = [
        f"Cycle model (sim/perf, equal to the RTL's cycles), DRAM latency {TIMING.latency} "
        f"cycles and {TIMING.bytes_per_cycle:g} bytes per cycle per direction ("
        + ", ".join(f"`{c.name}`: a {c.axi_data_bytes}-byte AXI beat every "
                    f"{TIMING.beat_interval(c.axi_data_bytes)} cycles" for c in configs)
        + f"). Batch 1, seeded random weights, calibrated on {CALIBRATION_IMAGES} seeded "
        "N(0, 1) images.",
        "`busy_pct`: array_busy / cycles (a chunk entered the array); `mac_util_pct`: MACs / "
        "(cycles x rows x columns), useful work only. Stall counters as % of cycles: "
        "load_wait / store_wait: the compute queue's head waits for a LOAD / STORE token; "
        "weight_load: a chunk waits at the array; dependency_wait: any queue's head waits for a "
        "token (overlaps the others).",
        "`dram_read_bytes` / `dram_write_bytes`: the LOADs' and STOREs' bytes (instruction "
        "fetch excluded). `compulsory_bytes`: every constant segment (weights, per-channel "
        "parameters, lookup tables) read once, the input read once, the outputs written once, "
        "tensors in the blocked DRAM layout (channels padded to the lanes). "
        "`layerwise_min_bytes`: the compiler's per-layer minimum summed (each layer's input "
        "and output activations and its constants once): what running layer by layer "
        "through DRAM cannot avoid.",
        "`images_per_s` at the config's `clock_mhz`, the clock the configs state their "
        "figures at (" + ", ".join(f"`{c.name}` {c.clock_mhz:g} MHz" for c in configs)
        + "). `compile_s`: export + calibration + quantization + "
        "compile, measured when the program was compiled (`compile_cached`: this run loaded "
        "it from build/networks/). `model_s`: wall time of sim.perf.predict.",
    ]
    speedup = (cycles.get(("resnet18", "default")), cycles.get(("resnet18", "large")))
    if all(speedup):
        notes.append(f"ResNet-18 `large` vs `default`: {speedup[0] / speedup[1]:.2f}x fewer "
                     f"cycles (target >= 3.5x); {_speedups('resnet18')}.")
    notes += failures
    return Section(rows=rows, notes=notes)


@benchmark("network_layers", "3x3 layers of VGG-16 and ResNet-18 in the whole network "
           "(default, cycle model, 8 B/cycle)")
def network_layers() -> Section:
    rows = []
    for network in LAYER_NETWORKS:
        done = _evaluate(network, "default")
        if done.error is None:
            rows += layer_rows(network, done.program, done.result)
    notes = [
        "From the `networks` runs: each layer of the whole network, not compiled alone. "
        "`mapping_bound`: the compiler's chunk cycles for the layer (array_busy when nothing "
        "stalls). `span_cycles`: first start to last done of the layer's instructions (they "
        "overlap the neighbours'); `cycles`: the layer's last done cycle minus the latest of "
        "the layers before it (they sum to the network's cycles). `mac_util_pct` uses "
        "`cycles`, `span_util_pct` the span. Target: >= 90% each.",
    ]
    return Section(rows=rows, notes=notes)


def kind_rows(network: str, program: Program, result: PerfResult) -> list[dict]:
    """Per kind of layer (convolutions by kernel size, pools, adds, concats), in order of first
    appearance: MACs, the compiler's mapping bound, attributed cycles, utilization and DRAM
    bytes (the compiler's per-layer count)."""
    config = program.config
    shapes = conv_shapes(program)
    kinds: dict[str, dict] = {}
    for layer, cycles in zip(program.layers, layer_cycles(result.layers)):
        shape = shapes.get(layer["name"])
        kind = layer["kind"] if shape is None else f"conv {shape.kernel}x{shape.kernel}"
        row = kinds.setdefault(kind, {"network": network, "config": config.name,
                                      "kind": kind, "layers": 0, "macs": 0,
                                      "mapping_bound": 0, "cycles": 0, "dram_bytes": 0})
        row["layers"] += 1
        row["macs"] += layer["macs"]
        row["mapping_bound"] += layer["cycles"]
        row["cycles"] += cycles
        row["dram_bytes"] += layer["dram_bytes"]
    for row in kinds.values():
        row["cycles_pct"] = pct(row["cycles"], result.cycles)
        row["mac_util_pct"] = (pct(row["macs"], row["cycles"] * config.peak_macs_per_cycle)
                               if row["macs"] else None)
    return list(kinds.values())


@benchmark("network_kinds", "Where the cycles go: layers by kind in the whole networks "
           "(default, cycle model, 8 B/cycle)")
def network_kinds() -> Section:
    rows = []
    for network in NETWORKS:
        done = _evaluate(network, "default")
        if done.error is None:
            rows += kind_rows(network, done.program, done.result)
    notes = ["From the `networks` runs on `default`. Per kind of layer (a fully connected "
             "layer is a convolution: the first one after a flatten over the whole feature "
             "map, AlexNet's fc6 6x6 and VGG-16's 7x7, the others 1x1): `cycles` attributed "
             "as in `network_layers` (they sum to the network's cycles), `cycles_pct` their "
             "share of the network, `mac_util_pct` MACs / (cycles x 256), `dram_bytes` the "
             "compiler's count of the layers' LOAD and STORE bytes."]
    return Section(rows=rows, notes=notes)


def _resnet18_block(index: int):
    """models.imagenet.resnet18's module `index` (seeded) and its input shape."""
    from models.imagenet import build

    model, _ = build("resnet18")
    shapes = {4: (1, 64, 56, 56), 8: (1, 128, 28, 28)}
    return model[index], shapes[index]


#: Layers compiled alone for the RTL check: ConvShapes of ResNet-18 (conv1, a stage-3 and a
#: stage-4 3x3 layer) and AlexNet's fc7, plus ResNet-18 residual blocks through the ONNX path
#: (two 3x3 convolutions, the skip and the add).
RTL_LAYERS: tuple = (
    ConvShape("resnet18 conv1 7x7/2 3->64 @224", 3, 224, 224, 7, 64, stride=2, pad=3),
    ConvShape("resnet18 3x3 256@14", 256, 14, 14, 3, 256, pad=1),
    ConvShape("resnet18 3x3 512@7", 512, 7, 7, 3, 512, pad=1),
    ConvShape("alexnet fc7 4096->4096", 4096, 1, 1, 1, 4096),
    ("resnet18 block 64@56 (2 conv + add)", 4),
    ("resnet18 block 128@28 -> 256@14 (stride 2, 1x1 skip)", 8),
)


def _rtl_program(layer, config: AcceleratorConfig) -> tuple[str, Program]:
    if isinstance(layer, ConvShape):
        return layer.name, compile_qgraph(conv_chain_graph([layer], name="layer"), config)
    name, index = layer
    module, shape = _resnet18_block(index)
    return name, compile_module(module, shape, config)


def _counter_diffs(model: dict[str, int], rtl: dict[str, int]) -> str:
    """The CSR counters where the model differs from the RTL, as "name model-rtl", or
    "none"."""
    diffs = [f"{name} {model[name] - rtl[name]:+d}" for name in rtl if model[name] != rtl[name]]
    return ", ".join(diffs) or "none"


@benchmark("network_layers_rtl", "Big layers on the Verilator RTL vs the cycle model "
           "(default, 8 B/cycle)")
def network_layers_rtl() -> Section:
    from sim.program_run import run_program
    from sim.rtl_verilator import top_verilog
    from sim.verilator.build import build_model

    config = preset("default")
    start = time.perf_counter()
    build_model(config, top_verilog(config))
    prepare = time.perf_counter() - start
    rng = np.random.default_rng(1)
    rows = []
    for layer in RTL_LAYERS:
        name, program = _rtl_program(layer, config)
        inputs = {t.name: rng.integers(-128, 128, t.shape[1:]).astype(np.int8)
                  for t in program.inputs}
        model_start = time.perf_counter()
        predicted = predict(program, TIMING)
        model_seconds = time.perf_counter() - model_start
        run = run_program(program, inputs, "verilator", timing=TIMING)
        want = run_program(program, inputs, "isa")
        macs = sum(entry["macs"] for entry in program.layers)
        loop_cycles = run.extra["loop_cycles"]
        rows.append({
            "config": config.name, "layer": name, "macs": macs,
            "instructions": len(program.instructions),
            "rtl_cycles": run.cycles, "model_cycles": predicted.cycles,
            "model_minus_rtl": predicted.cycles - run.cycles,
            "counter_diffs": _counter_diffs(predicted.counters, run.rtl.counters),
            "mac_util_pct": pct(macs, run.cycles * config.peak_macs_per_cycle),
            "rtl_cycles_per_s": round(loop_cycles / run.extra["loop_seconds"]),
            "rtl_cycles_per_cpu_s": round(loop_cycles / run.extra["loop_cpu_seconds"]),
            "rtl_run_s": round(run.seconds, 1), "model_s": round(model_seconds, 2),
            "outputs_equal_isa": all(np.array_equal(run.outputs[t.name], want.outputs[t.name])
                                     for t in program.outputs),
        })
    notes = [
        f"DRAM latency {TIMING.latency}, {TIMING.bytes_per_cycle:g} bytes per cycle. ConvShape "
        "rows: one convolution compiled alone (bench/conv_layers.py, seeded random int8); "
        "block rows: the seeded models.imagenet ResNet-18 module compiled through the ONNX "
        "path (bench/networks.py compile_module). `counter_diffs`: the CSR counters (cycles, "
        "array_busy and the four stall counters) where the model differs from the RTL, model "
        "minus RTL.",
        "`rtl_cycles_per_s` / `rtl_cycles_per_cpu_s`: the Verilator harness's clock loop over "
        "its wall / CPU time (start-up and the DRAM image excluded); `rtl_run_s`: "
        "run_program end to end. `outputs_equal_isa`: the RTL's outputs equal the functional "
        "model's.",
        f"Verilog generation + Verilator build (cached) before the runs: {prepare:.1f} s.",
    ]
    return Section(rows=rows, notes=notes)
