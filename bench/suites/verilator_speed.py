"""Verilator simulation speed on `default` (issue 4: at least 500,000 simulated cycles/s).

The program is two VGG-16 conv3_x-like layers (3x3, 64 -> 64 channels, 56x56, padding 1), about
a million cycles of back-to-back convolution tiles. Three wall times are recorded: the harness's
own clock loop (`loop_cycles_per_second`, timed inside sim/verilator/harness.cpp), the harness
process (adds start-up, reading the DRAM image and writing results back), and run_program end
to end (adds writing the DRAM image from Python). The Verilog generation and the Verilator
build are done (and cached) before the clock starts. The loop's CPU time gives
`loop_cycles_per_cpu_second`, the figure that does not depend on how loaded the machine is.
"""

from __future__ import annotations

import time

import numpy as np

from compiler.compile import compile_qgraph
from hw.config import preset
from sim.program_run import run_program
from sim.rtl_verilator import top_verilog
from sim.verilator.build import build_model

from ..conv_layers import ConvShape, conv_chain_graph, random_inputs
from ..registry import Section, benchmark

__all__ = ["LAYERS", "verilator_speed"]

LAYERS = [ConvShape(f"conv{i}", 64, 56, 56, 3, 64, pad=1) for i in (1, 2)]


@benchmark("verilator_speed", "Verilator simulation speed (default, long program)")
def verilator_speed() -> Section:
    config = preset("default")
    start = time.perf_counter()
    build_model(config, top_verilog(config))
    prepare_seconds = time.perf_counter() - start
    graph = conv_chain_graph(LAYERS, name="vgg_conv3x3_64")
    program = compile_qgraph(graph, config)
    inputs = random_inputs(graph)
    run = run_program(program, inputs, "verilator")
    want = run_program(program, inputs, "isa")
    out = graph.outputs[0]
    row = {
        "config": config.name,
        "program": f"{len(LAYERS)}x conv 3x3 64->64 56x56",
        "instructions": len(program.instructions),
        "cycles": run.cycles,
        "loop_cycles": run.extra["loop_cycles"],
        "loop_seconds": run.extra["loop_seconds"],
        "loop_cycles_per_second": run.extra["cycles_per_second"],
        "loop_cpu_seconds": run.extra["loop_cpu_seconds"],
        "loop_cycles_per_cpu_second": run.extra["loop_cycles"] / run.extra["loop_cpu_seconds"],
        "harness_seconds": run.extra["seconds"],
        "harness_cycles_per_second": run.extra["harness_cycles"] / run.extra["seconds"],
        "run_program_seconds": run.seconds,
        "end_to_end_cycles_per_second": run.cycles / run.seconds,
        "outputs_equal_isa": bool(np.array_equal(run.outputs[out], want.outputs[out])),
    }
    notes = [f"Verilog generation + cached Verilator build before timing: "
             f"{prepare_seconds:.1f} s (a fresh build of `default` takes minutes).",
             "Target (issue 4): at least 500,000 cycles/s."]
    return Section(rows=[row], notes=notes)
