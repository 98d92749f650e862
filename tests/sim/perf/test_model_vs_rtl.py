"""The cycle model equals the RTL: total cycles, every instruction's done cycle and the CSR
counters, on seeded random programs under Amaranth (tiny) and Verilator (default)."""

import numpy as np
import pytest

from bench.conv_layers import random_inputs
from compiler.compile import compile_qgraph
from hw.config import preset
from hw.isa import Activation, Add, Buffer, Load, Opcode
from sim.dram_model import DramTiming
from sim.perf import predict
from sim.perf.compare import rtl_done_cycles
from sim.program_run import run_program
from tests.compiler.codegen_util import GraphBuilder

from .programs import dma_program, random_layer, random_network, raw_program, stem_conv

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


@pytest.mark.slow(reason="34 more seeded layers and networks under Amaranth's simulator "
                  "(about 3 minutes)")
@pytest.mark.parametrize("kind,seed,timing", [("conv", s, "default") for s in range(4, 24)]
                         + [("pool", s, "default") for s in range(2, 8)]
                         + [("net", s, t) for s in range(2, 6) for t in ("default", "slow")])
def test_sweep_of_layers_and_networks(kind, seed, timing):
    program, inputs = (random_network(seed, TINY) if kind == "net"
                       else random_layer(seed, TINY, kind))
    assert_model_equals_rtl(program, inputs, timing=TIMINGS[timing])


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


@pytest.mark.parametrize("shape,timing", [
    # 1x1 stride 2 without padding: LOADs of every other row and column (one word per DMA
    # row), CONVs at stride 1 over the subsampled tile.
    ((20, 9, 9, 12, 2), "default"), ((20, 9, 9, 12, 2), "slow"),
    # 1x1 on a tile whose accumulator cannot hold every output block: the input tiles run
    # once per group of output blocks (compiler/tiling.py ob_group).
    ((96, 3, 3, 128, 1), "default"),
])
def test_pointwise_subsampling_and_output_block_groups(shape, timing):
    cin, h, w, cout, stride = shape
    rng = np.random.default_rng(cin + stride)
    b = GraphBuilder()
    y = b.conv(rng, b.input("x", (cin, h, w)), cout, 1, stride=stride,
               activation=Activation.RELU)
    graph = b.graph([y])
    config = TINY.replace(name="tiny_acc256", acc_words=256)
    program = compile_qgraph(graph, config)
    convs = [i for i in program.instructions if i.OPCODE is Opcode.CONV]
    if stride > 1:
        assert {i.stride for i in convs} == {1}
    else:
        assert len({i.acc_addr for i in convs}) > 1 and \
            max(i.acc_addr + i.out_h * i.out_w for i in convs) <= config.acc_words
    assert_model_equals_rtl(program, random_inputs(graph), timing=TIMINGS[timing])


@pytest.mark.parametrize("before,count", [(0, 5), (10, 40)])
def test_adds_while_a_table_loads(before, count):
    """A LUT load lands while ADDs of several pairs stream: the element-wise unit holds pairs
    mid-ADD, and the IBUF reader's two stages hold their words (sim/perf/compute.py `_add`).
    `before` IBUF words loaded first shift the table load against the ADDs."""
    def add(activation):
        return Add(activation=activation, a_addr=0, b_addr=100, count=count, obuf_addr=0,
                   mult_a=3, mult_b=5, shift=2)
    instructions = [Load(buffer=Buffer.IBUF, buf_addr=0, size0=before, count1=1, count2=1)
                    ] if before else []
    instructions += [add(Activation.LUT),
                     Load(buffer=Buffer.LUT, dram_addr=16384, size0=TINY.lut_words, count1=1,
                          count2=1),
                     add(Activation.NONE)]
    assert_model_equals_rtl(raw_program(TINY, instructions), {}, timing=TIMINGS["fast"])
