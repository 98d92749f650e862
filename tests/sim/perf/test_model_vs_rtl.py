"""The cycle model equals the RTL: total cycles, every instruction's done cycle and the CSR
counters, on seeded random programs under Amaranth (tiny) and Verilator (default)."""

import numpy as np
import pytest

from hw.config import preset
from sim.dram_model import DramTiming
from sim.perf import predict
from sim.perf.compare import rtl_done_cycles
from sim.program_run import run_program

from .programs import dma_program, random_layer, random_network, stem_conv

TINY = preset("tiny")
TIMINGS = {"default": DramTiming(), "slow": DramTiming(latency=30, bytes_per_cycle=1),
           "fast": DramTiming(latency=1, bytes_per_cycle=4)}


def assert_model_equals_rtl(program, inputs, backend="amaranth", timing=DramTiming()):
    rtl = run_program(program, inputs, backend, timing=timing).rtl
    model = predict(program, timing)
    assert model.late_events == 0
    assert model.cycles == rtl.cycles
    assert model.counters == rtl.counters
    got = rtl_done_cycles(program, rtl)
    wrong = [(k, got[k], model.end[k]) for k in range(len(got))
             if got[k] is not None and got[k] != model.end[k]]
    assert wrong == [], f"(instruction, RTL done, model done): {wrong[:5]}"


@pytest.mark.parametrize("seed,timing", [(0, "default"), (1, "slow"), (2, "fast")])
def test_dma_programs(seed, timing):
    program = dma_program(TINY, np.random.default_rng(seed))
    assert_model_equals_rtl(program, {}, timing=TIMINGS[timing])


@pytest.mark.parametrize("kind,seed", [("conv", s) for s in range(4)]
                         + [("pool", 0), ("pool", 1), ("gap", 0), ("add", 0)])
def test_random_layer(kind, seed):
    program, inputs = random_layer(seed, TINY, kind)
    assert_model_equals_rtl(program, inputs)


@pytest.mark.parametrize("seed,timing", [(0, "default"), (1, "slow")])
def test_random_network(seed, timing):
    program, inputs = random_network(seed, TINY)
    assert_model_equals_rtl(program, inputs, timing=TIMINGS[timing])


def test_table_loads_overlapping_earlier_layers():
    program, inputs = random_network(3, TINY, lut=True)
    assert_model_equals_rtl(program, inputs)


@pytest.mark.slow(reason="builds the default config's Verilator model on first use "
                  "(several minutes, cached afterwards)")
@pytest.mark.parametrize("seed", [0, 1])
def test_default_config_on_verilator(seed):
    default = preset("default")
    program, inputs = random_layer(seed, default, "conv")
    assert_model_equals_rtl(program, inputs, backend="verilator",
                            timing=DramTiming(bytes_per_cycle=8))
    program, inputs = random_network(seed, default)
    assert_model_equals_rtl(program, inputs, backend="verilator")
    program, inputs = stem_conv(seed, default)
    assert_model_equals_rtl(program, inputs, backend="verilator",
                            timing=DramTiming(bytes_per_cycle=8))
