"""Convolutions compiled by compiler.compile and run on the functional model equal the golden
reference bit for bit: kernel sizes 1..11 and one larger than max_kernel (split into pieces),
strides 1/2/4, paddings 0..3, channel counts that are not multiples of the lanes, odd sizes,
fully connected layers, and tiles split over rows, columns and input channels."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.compile import compile_qgraph
from compiler.errors import CompileError
from hw.config import preset
from hw.isa import Activation, Opcode

from .codegen_util import GraphBuilder, check_graph, out_size

TINY, DEFAULT, LARGE = preset("tiny"), preset("default"), preset("large")


def _conv_graph(rng, cin, h, w, cout, kernel, stride=1, pads=(0, 0, 0, 0),
                activation=Activation.NONE):
    b = GraphBuilder()
    x = b.input("x", (cin, h, w))
    y = b.conv(rng, x, cout, kernel, stride=stride, pads=pads, activation=activation)
    return b.graph([y])


# (kernel, stride, pads, cin, cout, h, w): every kernel size, stride and padding at least once.
CASES = [
    (1, 1, (0, 0, 0, 0), 3, 16, 9, 7),
    (1, 2, (0, 0, 0, 0), 17, 3, 11, 13),
    (2, 2, (0, 0, 1, 1), 1, 20, 10, 9),
    (3, 1, (1, 1, 1, 1), 16, 17, 13, 11),
    (3, 2, (1, 0, 0, 1), 20, 16, 15, 12),
    (3, 4, (2, 2, 2, 2), 3, 1, 17, 19),
    (5, 1, (2, 2, 2, 2), 17, 20, 12, 9),
    (5, 2, (3, 1, 3, 2), 3, 17, 21, 18),
    (7, 2, (3, 3, 3, 3), 3, 16, 23, 25),
    (7, 4, (0, 3, 1, 2), 20, 3, 25, 27),
    (11, 4, (2, 2, 2, 2), 3, 20, 39, 35),
    (11, 1, (0, 0, 0, 0), 1, 3, 13, 12),
    (13, 2, (1, 2, 3, 0), 3, 17, 27, 25),   # larger than max_kernel 11: 2x2 pieces of 7
]


@pytest.mark.parametrize("kernel,stride,pads,cin,cout,h,w", CASES)
def test_conv_shapes_tiny(kernel, stride, pads, cin, cout, h, w):
    rng = np.random.default_rng(kernel * 100 + stride * 10 + cin)
    activation = Activation((kernel + stride) % 3)
    check_graph(_conv_graph(rng, cin, h, w, cout, kernel, stride, pads, activation), TINY, rng)


@pytest.mark.parametrize("kernel,stride,pads,cin,cout,h,w", CASES[::3])
def test_conv_shapes_default(kernel, stride, pads, cin, cout, h, w):
    rng = np.random.default_rng(kernel * 100 + stride * 10 + cin + 1)
    check_graph(_conv_graph(rng, cin, h, w, cout, kernel, stride, pads, Activation.RELU),
                DEFAULT, rng)


@pytest.mark.parametrize("kernel,stride,pads,cin,cout,h,w", CASES[1::5])
def test_conv_shapes_large(kernel, stride, pads, cin, cout, h, w):
    rng = np.random.default_rng(kernel * 100 + stride * 10 + cin + 2)
    check_graph(_conv_graph(rng, cin, h, w, cout, kernel, stride, pads), LARGE, rng)


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
@pytest.mark.parametrize("side,cin", [(7, 16), (5, 20), (13, 3)])
def test_fully_connected_as_whole_input_kernel(config, side, cin):
    rng = np.random.default_rng(side * cin)
    check_graph(_conv_graph(rng, cin, side, side, 10, side), config, rng)


def test_tiles_split_rows_and_channels_on_tiny():
    """40 channels x 45 x 47 is 21150 input words against a 1023-word input slot, and 40
    channels x 47 columns exceeds the 256-word line buffer: the tiler must cut rows and input
    channels, and accumulate the channel tiles in the accumulator buffer."""
    rng = np.random.default_rng(7)
    graph = _conv_graph(rng, 40, 45, 47, 20, 3, 1, (1, 1, 1, 1), Activation.RELU)
    program, _ = check_graph(graph, TINY, rng)
    layer = program.layers[0]
    assert layer["tiles"] > 1
    convs = [i for i in program.instructions if i.OPCODE is Opcode.CONV]
    assert any(i.accumulate for i in convs)                 # passes accumulate
    assert max(i.in_groups for i in convs) < 10             # channel tiles (10 blocks total)
    assert layer["dram_bytes"] >= layer["compulsory_bytes"]


def test_tiles_split_columns_on_tiny():
    """A 300-column row exceeds the 256-word line buffer: the tiler must cut columns (with a
    halo of kernel - stride columns) and pad only the image's left and right edges."""
    rng = np.random.default_rng(11)
    program, _ = check_graph(_conv_graph(rng, 3, 9, 300, 5, 3, 1, (1, 1, 1, 1)), TINY, rng)
    convs = [i for i in program.instructions if i.OPCODE is Opcode.CONV]
    assert max(i.in_w for i in convs) <= TINY.line_buffer_words
    assert sorted({i.pad_left for i in convs}) == [0, 1]


def test_multi_pass_reduction_and_large_input_on_default():
    rng = np.random.default_rng(8)
    check_graph(_conv_graph(rng, 40, 61, 70, 33, 5, 2, (2, 2, 2, 2), Activation.LUT), DEFAULT,
                rng)


@pytest.mark.parametrize("changes", [dict(token_depth=1, queue_depth=2),
                                     dict(token_depth=2, contexts=3, wbuf_words=32,
                                          pbuf_words=2, acc_words=128, obuf_words=128,
                                          ibuf_words=512, line_buffer_words=64)],
                         ids=["depth1", "small-buffers"])
def test_tight_configs(changes):
    """Token depth 1 and tiny buffers: tokens must still order every access (the functional
    model checks races, token overflow and deadlock)."""
    config = TINY.replace(name="tight", **changes)
    rng = np.random.default_rng(9)
    check_graph(_conv_graph(rng, 17, 19, 21, 9, 3, 1, (1, 1, 1, 1), Activation.RELU),
                config, rng)


def test_stride_beyond_config_is_a_clear_error():
    rng = np.random.default_rng(10)
    b = GraphBuilder()
    x = b.input("x", (3, 20, 20))
    y = b.conv(rng, x, 4, 5, stride=5, name="too_far")
    assert out_size(20, 5, 5, 0, 0) == 4
    with pytest.raises(CompileError, match="too_far.*stride 5"):
        # Unpacked: input packing would run this first layer at stride 1 (step 5).
        compile_qgraph(b.graph([y]), TINY, pack_inputs=False)


@pytest.mark.parametrize("seed", range(4))
def test_random_layers(seed):
    """Seeded random convolutions on tiny and on tiny variants with small buffers, few
    contexts and a shallow token queue: 6 layers per seed."""
    rng = np.random.default_rng(100 + seed)
    configs = [TINY, TINY.replace(name="shallow", token_depth=2, queue_depth=2),
               TINY.replace(name="few-contexts", contexts=5, wbuf_words=64, pbuf_words=4,
                            acc_words=256, ibuf_words=1024, line_buffer_words=128)]
    for index in range(6):
        kernel = int(rng.choice([1, 2, 3, 5, 7, 11]))
        stride = int(rng.choice([1, 2, 4]))
        pads = tuple(int(rng.integers(0, min(4, kernel))) for _ in range(4))
        h, w = (int(rng.integers(kernel, kernel + 24)) for _ in range(2))
        cin, cout = (int(rng.choice([1, 3, 16, 17, 20, 36])) for _ in range(2))
        graph = _conv_graph(rng, cin, h, w, cout, kernel, stride, pads,
                            Activation(int(rng.integers(0, 3))))
        check_graph(graph, configs[index % len(configs)], rng)


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
@pytest.mark.parametrize("stride,h,w", [(2, 11, 13), (3, 10, 8), (4, 9, 14)])
def test_strided_1x1_loads_only_the_pixels_it_reads(config, stride, h, w):
    """A 1x1 stride-s convolution without padding reads every s-th row and column: its LOADs
    skip the others (one word per DMA row) and its CONVs run at stride 1. The input is a
    concatenation of 3 + 20 channels (each input starts a channel block: a gap in the
    channel map)."""
    rng = np.random.default_rng(stride * 10 + h)
    b = GraphBuilder()
    x = b.concat(b.input("a", (3, h, w)), b.input("b", (20, h, w)))
    y = b.conv(rng, x, 19, 1, stride=stride, activation=Activation.RELU)
    program, _ = check_graph(b.graph([y]), config, rng)
    convs = [i for i in program.instructions if i.OPCODE is Opcode.CONV]
    assert {i.stride for i in convs} == {1}
    lanes = config.lanes
    ibuf_loads = [i for i in program.instructions
                  if i.OPCODE is Opcode.LOAD and i.buffer.name == "IBUF" and i.size0 > 0]
    assert {(i.size0, i.stride1) for i in ibuf_loads} == {(1, stride * lanes)}
    assert sum(i.count1 * i.count2 for i in ibuf_loads) \
        == (-(-3 // lanes) + -(-20 // lanes)) * -(-h // stride) * -(-w // stride)


def test_output_block_groups_share_the_accumulator():
    """A split reduction whose tile would leave too few accumulator words for every output
    block runs the input tiles once per group of blocks (tiny: 1,024 accumulator words hold
    20 of the 128 output blocks of a whole 7x7 tile; 7 groups of at most 19)."""
    rng = np.random.default_rng(11)
    graph = _conv_graph(rng, 128, 7, 7, 512, 1, activation=Activation.RELU)
    program, _ = check_graph(graph, TINY, rng)
    convs = [i for i in program.instructions if i.OPCODE is Opcode.CONV]
    assert max(i.acc_addr + i.out_h * i.out_w for i in convs) <= TINY.acc_words
    assert len({i.acc_addr for i in convs}) == 19 and {i.out_h * i.out_w for i in convs} == {49}
