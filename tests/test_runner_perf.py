"""`systolica run --backend perf`: the functional model's outputs with the cycle model's
cycles, presented like an RTL run (per-layer cycles that sum to the total, counters)."""

import numpy as np
import torch

from compiler.frontend import from_torch
from hw.config import preset
from models.lenet5 import LeNet5
from sim.perf import predict
from systolica import report
from systolica.pipeline import compile_network
from systolica.runner import run_network

torch.set_num_threads(1)


def test_perf_backend_reports_model_cycles_and_isa_outputs():
    torch.manual_seed(0)
    graph = from_torch(LeNet5().eval(), (1, 1, 32, 32))
    x = np.random.default_rng(0).random((2, 1, 32, 32)).astype(np.float32)
    program = compile_network(graph, preset("tiny"), calibration=x)
    perf = run_network(program, x, "perf", progress=False)
    isa = run_network(program, x, "isa", progress=False)
    for name in isa.int8:
        np.testing.assert_array_equal(perf.int8[name], isa.int8[name])
    predicted = predict(program)
    image = perf.images[0]
    assert image.rtl.cycles == predicted.cycles
    assert image.rtl.counters == {"cycles": predicted.cycles, **predicted.counters}
    assert sum(image.layer_cycles) == predicted.cycles
    rows = report.layer_rows(perf)
    assert {r["cycles_source"] for r in rows} == {"model"}
    assert "predicted by the cycle model" in report.format_table(perf)
