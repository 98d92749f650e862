"""Input packing, the compiler pass (compiler/input_packing.py): a few-channel first conv
compiled over a host-packed input equals the golden reference bit for bit on the functional
model, for strides 1, 2, 4, kernels 3 to 11, paddings 0 to 3 and 1 or 3 channels; its mapping
bound drops; inputs that gain nothing stay as they are. The packing itself and its place in
the program file: tests/hw/test_input_packing.py. On the RTL: test_input_packing_rtl.py."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import reference
from compiler.compile import compile_qgraph, layer_report
from compiler.input_packing import pack_conv, pack_inputs
from hw.config import preset
from hw.input_packing import InputPacking
from hw.isa import Activation
from hw.program import Program
from sim.program_run import run_program

from .codegen_util import GraphBuilder, check_graph, out_size

TINY, DEFAULT = preset("tiny"), preset("default")


def _one_conv(rng, cin, h, w, cout, kernel, stride, pads, activation=Activation.NONE):
    b = GraphBuilder()
    x = b.input("x", (cin, h, w))
    return b.graph([b.conv(rng, x, cout, kernel, stride=stride, pads=pads,
                           activation=activation)])


@pytest.mark.parametrize("kernel,stride,step,taps", [
    (5, 1, 1, 3), (5, 2, 2, 2), (5, 2, 2, 5), (11, 4, 4, 11), (5, 1, 1, 1), (5, 2, 1, 4),
    (3, 4, 4, 3), (11, 4, 2, 3)])
def test_packed_conv_equals_reference_conv(kernel, stride, step, taps):
    """pack_conv on its own, through the reference conv (no tiling involved)."""
    rng = np.random.default_rng([kernel, stride, step, taps])
    g = _one_conv(rng, 3, 17, 14, 5, kernel, stride, (3, 1, 2, 0))
    (op,) = g.ops
    x = rng.integers(-128, 128, g.tensors["x"].shape).astype(np.int8)
    packed, packing, shape = pack_conv(op, g.tensors["x"].shape, g.tensors[op.output].shape,
                                       step=step, taps=taps)
    px = packing.pack(x)
    assert px.shape == shape
    np.testing.assert_array_equal(reference.conv(packed, px), reference.conv(op, x))


CASES = [(config, cin, stride, kernel, pad)
         for config in ("tiny", "default") for cin in (1, 3) for stride in (1, 2, 4)
         for kernel in (3, 5, 7, 11) for pad in range(4)]


@pytest.mark.parametrize("config,cin,stride,kernel,pad", CASES)
def test_packed_first_layer_is_bit_exact(config, cin, stride, kernel, pad):
    cfg = preset(config)
    rng = np.random.default_rng([cin, stride, kernel, pad, len(config)])
    h, w = kernel + 2 * stride + 1, kernel + 3 * stride     # 3 and 4 output pixels unpadded
    graph = _one_conv(rng, cin, h, w, 6, kernel, stride, (pad, pad, pad, pad))
    program, _ = check_graph(graph, cfg, rng, pack_inputs=True)
    layer = program.layers[0]
    # Every one of these layers is packed: 1 or 3 channels leave most lanes idle otherwise.
    assert "input_packing" in layer, layer
    assert program.inputs[0].packing is not None
    assert program.inputs[0].shape == (1, cin, h, w)
    if layer["cycles_unpacked"] >= 0:
        assert layer["cycles"] < layer["cycles_unpacked"]


@pytest.mark.parametrize("config", ["tiny", "default"])
def test_asymmetric_pads_relu_and_wide_output(config):
    cfg = preset(config)
    rng = np.random.default_rng(7)
    graph = _one_conv(rng, 3, 23, 19, 2 * cfg.lanes + 3, 7, 2, (3, 0, 1, 2),
                      activation=Activation.RELU)
    program, _ = check_graph(graph, cfg, rng, pack_inputs=True)
    assert program.inputs[0].packing is not None


def test_packed_network_runs_through_prepare_dram():
    """The runtime path (sim.program_run): the packed input goes in through write_tensor."""
    rng = np.random.default_rng(3)
    b = GraphBuilder()
    x = b.input("x", (3, 21, 21))
    y = b.conv(rng, x, 8, 5, stride=2, pads=(2, 2, 2, 2), activation=Activation.RELU)
    y = b.conv(rng, y, 8, 3, pads=(1, 1, 1, 1))
    graph = b.graph([y])
    inputs = {"x": rng.integers(-128, 128, (3, 21, 21)).astype(np.int8)}
    program = Program.from_bytes(compile_qgraph(graph, DEFAULT).to_bytes(), config=DEFAULT)
    assert program.inputs[0].packing == InputPacking(step=2, taps=5, pad_top=2, pad_left=2,
                                                     height=11, width=11)
    run = run_program(program, inputs, "isa")
    np.testing.assert_array_equal(run.outputs[y], reference.run(graph, inputs)[y])


def test_alexnet_conv1_mapping_bound_drops():
    """AlexNet conv1 (227x227x3, 11x11/4, 96 filters) on default: 121 chunks per pixel and
    output block before, ceil(363 / 16) = 23 after (98.6% of the ideal 363 / 16)."""
    rng = np.random.default_rng(1)
    graph = _one_conv(rng, 3, 227, 227, 96, 11, 4, (0, 0, 0, 0))
    before = compile_qgraph(graph, DEFAULT, pack_inputs=False).layers[0]
    after = compile_qgraph(graph, DEFAULT).layers[0]
    assert before["cycles"] == 6 * 55 * 55 * 121 == 2_196_150
    assert after["cycles"] == 6 * 55 * 55 * 23 == 417_450 == after["cycles_unpacked"] // 121 * 23
    assert after["macs"] == before["macs"] == 96 * 3 * 121 * 55 * 55
    assert after["input_packing"] == {"step": 4, "taps": 11, "pad_top": 0, "pad_left": 0,
                                      "height": 55, "width": 55}
    chosen = pack_inputs(graph, DEFAULT)[1]["x"]
    assert (chosen.cycles_before, chosen.cycles_after) == (2_196_150, 417_450)
    program = compile_qgraph(graph, DEFAULT)
    row = layer_report(program).splitlines()[2].split()
    assert int(row[4]) == 417_450          # the report's cycles column


def test_original_kept_when_packing_is_not_better():
    rng = np.random.default_rng(2)
    # 16 channels fill the 16 lanes of default: no packing can beat 9 chunks per pixel.
    g16 = _one_conv(rng, 16, 10, 10, 16, 3, 1, (1, 1, 1, 1))
    assert pack_inputs(g16, DEFAULT) == (g16, {})
    # An input that a second op also reads, or that is a graph output, stays as it is.
    b = GraphBuilder()
    x = b.input("x", (3, 10, 10))
    y1 = b.conv(rng, x, 4, 3, pads=(1, 1, 1, 1))
    y2 = b.conv(rng, x, 4, 3, pads=(1, 1, 1, 1))
    shared = b.graph([b.add(rng, y1, y2)])
    assert pack_inputs(shared, DEFAULT)[1] == {}
    b = GraphBuilder()
    x = b.input("x", (3, 10, 10))
    assert pack_inputs(b.graph([b.conv(rng, x, 4, 3), x]), DEFAULT)[1] == {}


def test_stride_beyond_max_stride_compiles_when_packed():
    """tiny's max_stride is exceeded by a stride-5 first layer; a step-5 packing runs it at
    stride 1, exactly."""
    rng = np.random.default_rng(10)
    graph = _one_conv(rng, 3, 20, 20, 4, 5, 5, (0, 0, 0, 0))
    assert out_size(20, 5, 5, 0, 0) == 4
    program, _ = check_graph(graph, TINY, rng, pack_inputs=True)
    assert program.layers[0]["input_packing"]["step"] == 5
    assert program.layers[0]["cycles_unpacked"] == -1       # the unpacked conv cannot run


def test_fully_connected_over_the_input_packs_to_1x1():
    """A classifier reading the image directly (a kernel covering the whole input) becomes
    one 1x1 conv over C * H * W channels: 3 * 12^2 = 432 channels, 108 chunks per output
    block on tiny, against 144 unpacked (2 x 2 kernel pieces of 6x6 taps, one group each)."""
    rng = np.random.default_rng(9)
    graph = _one_conv(rng, 3, 12, 12, 5, 12, 1, (0, 0, 0, 0))
    program, _ = check_graph(graph, TINY, rng, pack_inputs=True)
    layer = program.layers[0]
    assert layer["input_packing"]["taps"] == 12
    assert (layer["cycles"], layer["cycles_unpacked"]) == (2 * 108, 2 * 144)
