"""Convolution tile choice (compiler/tiling.py): near-equal passes, and tiles that keep the
array busy on the deep, small layers of ResNet-18 and VGG-16 (issue 7: >= 90% busy on
`default` with DRAM at 8 bytes per cycle, checked with the cycle model, which equals the RTL
cycle for cycle)."""

from __future__ import annotations

import pytest

from bench.conv_layers import ConvShape, conv_chain_graph
from compiler.compile import compile_qgraph
from compiler.tiling import conv_pass_cycles, pass_ranges, plan_conv
from hw.config import preset
from hw.isa import Opcode
from sim.dram_model import DramTiming
from sim.perf import predict

DEFAULT = preset("default")


@pytest.mark.parametrize("chunks", [1, 9, 15, 16, 17, 18, 27, 72, 144, 288])
@pytest.mark.parametrize("contexts", [3, 16])
def test_pass_ranges_are_fewest_and_near_equal(chunks, contexts):
    passes = pass_ranges(chunks, contexts)
    assert len(passes) == -(-chunks // contexts)
    assert [start for start, _ in passes] == [sum(n for _, n in passes[:i])
                                              for i in range(len(passes))]
    counts = [n for _, n in passes]
    assert sum(counts) == chunks and max(counts) <= contexts
    assert max(counts) - min(counts) <= 1 and counts == sorted(counts, reverse=True)


def test_short_pass_before_long_weight_load_is_costed():
    # 49 pixels: 16 + 2 chunks stall on the 16-chunk bank load (32 + 256 cycles after a
    # 98-cycle pass); 9 + 9 do not.
    uneven = conv_pass_cycles(DEFAULT, pixels=49, in_words=98, counts=[16, 2],
                              weights_resident=True)
    even = conv_pass_cycles(DEFAULT, pixels=49, in_words=98, counts=[9, 9],
                            weights_resident=True)
    assert (uneven, even) == (784 + 288, 2 * 441)


# ResNet-18's 3x3 stages at 14x14 and 7x7 (86.5% and 49.7% busy when the tiling put every
# channel block in one input tile) and a VGG-16 512 -> 512 layer at 14x14 (69.8%).
DEEP = [ConvShape("r14", 256, 14, 14, 3, 256, pad=1), ConvShape("r7", 512, 7, 7, 3, 512, pad=1),
        ConvShape("v14", 512, 14, 14, 3, 512, pad=1)]


@pytest.mark.parametrize("shape", DEEP, ids=lambda s: s.name)
def test_passes_are_not_bound_by_input_streaming(shape):
    t = plan_conv(DEFAULT, in_groups=shape.in_channels // 16, height=shape.height,
                  width=shape.width, kernel=3, stride=1, out_h=shape.out_height,
                  out_w=shape.out_width, out_blocks=shape.out_channels // 16)
    program = compile_qgraph(conv_chain_graph([shape], name=shape.name), DEFAULT)
    for conv in (i for i in program.instructions if i.OPCODE is Opcode.CONV):
        # the window generator streams the input tile once per pass, one word per cycle
        assert conv.in_h * conv.in_w * conv.in_groups < conv.out_h * conv.out_w \
            * conv.chunk_count
    assert t.cycles * 100 <= program.layers[0]["cycles"] * 101


@pytest.mark.parametrize("shape", DEEP[:2], ids=lambda s: s.name)
def test_deep_layers_keep_the_array_busy(shape):
    program = compile_qgraph(conv_chain_graph([shape], name=shape.name), DEFAULT)
    counters = predict(program, DramTiming(latency=20, bytes_per_cycle=8.0)).counters
    assert counters["array_busy"] == program.layers[0]["cycles"]
    assert counters["array_busy"] >= 0.98 * counters["cycles"]


# ResNet-50's 1x1 layers below 51% of the peak MACs: the stride-2 projections (the window
# generator streamed whole input tiles, two or more words per chunk, now loaded subsampled)
# and 512 -> 2048 at 7x7 (all 128 output blocks shared the accumulator: 16 pixels per tile,
# so all 32 channel blocks went in one input tile, 1,570 input cycles per 784-chunk pass; now
# 4 groups of 32 blocks with 7x7 tiles).
POINTWISE = [ConvShape("s56", 256, 56, 56, 1, 512, stride=2),
             ConvShape("s28", 512, 28, 28, 1, 1024, stride=2),
             ConvShape("s14", 1024, 14, 14, 1, 2048, stride=2),
             ConvShape("e7", 512, 7, 7, 1, 2048)]


@pytest.mark.parametrize("shape", POINTWISE, ids=lambda s: s.name)
def test_resnet50_pointwise_layers_keep_the_array_busy(shape):
    program = compile_qgraph(conv_chain_graph([shape], name=shape.name), DEFAULT)
    result = predict(program, DramTiming(latency=20, bytes_per_cycle=8.0))
    assert result.counters["array_busy"] == program.layers[0]["cycles"] \
        == shape.macs // DEFAULT.peak_macs_per_cycle
    assert shape.macs >= 0.98 * result.cycles * DEFAULT.peak_macs_per_cycle
