"""Issue 5's acceptance: seeded PyTorch networks exported to ONNX compile for every preset and
the compiled program on the functional model gives exactly the golden model's int8 outputs."""

import numpy as np
import pytest

from compiler import reference
from hw.config import preset
from sim.program_run import run_program
from systolica.pipeline import compile_onnx
from systolica.runner import load_qgraph

from . import netlib

# Every model on tiny and default; large gets the ones that stress tiling the most.
CASES = [(name, cfg) for name in netlib.MODELS for cfg in ("tiny", "default")] + \
    [(name, "large") for name in ("conv3s1p1", "conv11s4", "residual", "inception",
                                  "classifier_softmax")]


@pytest.mark.parametrize("name,cfg", CASES)
def test_isa_equals_reference(exports, name, cfg):
    path = exports[(name, "legacy")]
    _, shape = netlib.build(name)
    rng = np.random.default_rng(len(name))
    calibration = rng.standard_normal((4, *shape[1:])).astype(np.float32)
    program = compile_onnx(path, preset(cfg), calibration=calibration,
                           host_fallback="softmax" in name)
    graph = load_qgraph(program)
    (input_name,) = graph.inputs
    x = reference.quantize_tensor(calibration[0], graph.tensors[input_name].scale)
    want = reference.run(graph, {input_name: x})
    got = run_program(program, {input_name: x}, "isa")
    assert got.outputs, "the program has no outputs"
    for out_name, value in got.outputs.items():
        np.testing.assert_array_equal(value, want[out_name], err_msg=f"{name} on {cfg}")
