# amaranth: UnusedElaboratable=no
"""A packed first layer on the Amaranth RTL (tiny): the input goes into DRAM packed through
sim.program_run like every runtime's, and the outputs equal the golden reference."""

from __future__ import annotations

import numpy as np

from compiler import reference
from compiler.compile import compile_qgraph
from hw.config import preset
from hw.isa import Activation, PoolKind
from sim.program_run import run_program

from .codegen_util import GraphBuilder

TINY = preset("tiny")


def test_packed_network_on_amaranth_equals_reference():
    rng = np.random.default_rng(21)
    b = GraphBuilder()
    x = b.input("x", (3, 11, 11))
    y = b.conv(rng, x, 4, 5, stride=2, pads=(2, 1, 2, 1), activation=Activation.RELU)
    y = b.pool(y, PoolKind.MAX, 2, 2)
    y = b.conv(rng, y, 4, 1)
    graph = b.graph([y])
    program = compile_qgraph(graph, TINY)
    assert program.inputs[0].packing is not None
    inputs = {"x": rng.integers(-128, 128, (3, 11, 11)).astype(np.int8)}
    run = run_program(program, inputs, "amaranth")
    np.testing.assert_array_equal(run.outputs[y], reference.run(graph, inputs)[y])
    assert run.cycles > 0
