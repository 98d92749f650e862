"""Array utilization of back-to-back convolution tiles on `default`, read from the RTL's
counters (issue 4: at least 90% with DRAM delivering enough bytes per cycle; issue 7: VGG-16
and ResNet-18 3x3 layers at least 90% with DRAM at 8 bytes per cycle).

Each layer is compiled alone and run on the Verilator RTL with DRAM latency 20 cycles and
16 bytes per cycle (the AXI bus width of `default`: one beat per cycle) or 8 bytes per cycle.
`busy_pct` is the array_busy counter over cycles (a chunk entered the array);
`mac_util_pct` counts only useful multiply-accumulates (MACs / (cycles x 256)). Where the other
cycles went: `weight_load_pct` (a chunk waits at the array: weights still loading or results
backed up), `prologue` (cycles until the first load instruction retired: the array cannot start
before its first input tile is in), `epilogue` (cycles after the last compute instruction
retired: storing the last tile), and the rest, `other_pct`, stalls between tiles.
"""

from __future__ import annotations

from compiler.compile import compile_qgraph
from hw.config import preset
from sim.dram_model import DramTiming
from sim.program_run import run_program

from ..conv_layers import ConvShape, conv_chain_graph, random_inputs
from ..registry import Section, benchmark

__all__ = ["LAYERS", "BYTES_PER_CYCLE", "utilization", "layer_row"]

#: 3x3 layers of VGG-16 (conv3_1-like at 56x56 with 64 channels) and of ResNet-18's stages.
LAYERS = [
    ConvShape("vgg16 3x3 64@56", 64, 56, 56, 3, 64, pad=1),
    ConvShape("resnet18 3x3 128@28", 128, 28, 28, 3, 128, pad=1),
    ConvShape("resnet18 3x3 256@14", 256, 14, 14, 3, 256, pad=1),
    ConvShape("resnet18 3x3 512@7", 512, 7, 7, 3, 512, pad=1),
]
BYTES_PER_CYCLE = (16.0, 8.0)
_LOAD, _COMPUTE = 1, 2   # retire mask bits (sim/rtl_result.py)


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2)


def layer_row(shape: ConvShape, timing: DramTiming, config_name: str = "default") -> dict:
    config = preset(config_name)
    graph = conv_chain_graph([shape], name=shape.name)
    program = compile_qgraph(graph, config)
    run = run_program(program, random_inputs(graph), "verilator", timing=timing)
    c, cycles = run.rtl.counters, run.rtl.cycles
    retire = run.rtl.retirements
    first_load = min((t for t, mask in retire if mask & _LOAD), default=0)
    last_compute = max((t for t, mask in retire if mask & _COMPUTE), default=cycles)
    epilogue = max(0, cycles - last_compute)
    other = cycles - c["array_busy"] - c["weight_load"] - first_load - epilogue
    return {
        "config": config.name, "layer": shape.name, "dram_bytes_per_cycle": timing.bytes_per_cycle,
        "macs": shape.macs, "cycles": cycles,
        "mapping_bound_cycles": sum(layer["cycles"] for layer in program.layers),
        "array_busy": c["array_busy"], "busy_pct": _pct(c["array_busy"], cycles),
        "mac_util_pct": _pct(shape.macs, cycles * config.peak_macs_per_cycle),
        "weight_load_pct": _pct(c["weight_load"], cycles),
        "prologue": first_load, "epilogue": epilogue, "other_pct": _pct(other, cycles),
        "load_wait": c["load_wait"], "store_wait": c["store_wait"],
        "dependency_wait": c["dependency_wait"],
        "dram_read_bytes": run.rtl.dram_read_bytes, "dram_write_bytes": run.rtl.dram_write_bytes,
    }


@benchmark("utilization", "Array utilization of convolution layers on the RTL (default)")
def utilization() -> Section:
    rows = [layer_row(shape, DramTiming(latency=20, bytes_per_cycle=bpc))
            for bpc in BYTES_PER_CYCLE for shape in LAYERS]
    notes = ["Targets: >= 90% busy (issue 4, DRAM fast enough; issue 7, 8 B/cycle).",
             "`mapping_bound_cycles`: the compiler's count of chunk cycles for the layer's "
             "tiling (no fill, drain or stalls); `busy_pct` can reach at most "
             "array_busy / that."]
    if not any(r["load_wait"] or r["store_wait"] or r["dependency_wait"] for r in rows):
        notes.append("The load_wait, store_wait and dependency_wait counters read 0 in every "
                     "run: hw/top.py drives only array_busy and weight_load of PerfEvents, so "
                     "the prologue/epilogue/other split above comes from the retire trace.")
    return Section(rows=rows, notes=notes)
