"""bench/topologies.py and bench/conv_layers.py: the conv layers the benchmarks use."""

import pytest

from bench.conv_layers import ConvShape, conv_chain_graph
from bench.topologies import conv_layers


def test_resnet18_has_its_twenty_convolutions():
    layers = conv_layers("resnet18")
    assert len(layers) == 20   # stem, 16 in basic blocks, 3 stride-2 projections
    assert layers[0] == ConvShape("L01_0", 3, 224, 224, 7, 64, stride=2, pad=3)
    assert sum(s.macs for s in layers) == 1_813_561_344
    assert sum(s.kernel == 1 and s.stride == 2 for s in layers) == 3


def test_alexnet_from_the_model_starts_at_227():
    first = conv_layers("alexnet")[0]
    assert (first.height, first.kernel, first.stride, first.out_height) == (227, 11, 4, 55)


def test_unknown_topology_names_the_choices():
    with pytest.raises(ValueError, match="alexnet_scalesim"):
        conv_layers("lenet")


def test_chain_graph_checks_that_layers_connect():
    a = ConvShape("a", 16, 8, 8, 3, 32, pad=1)
    graph = conv_chain_graph([a, ConvShape("b", 32, 8, 8, 1, 16)])
    assert graph.tensors[graph.outputs[0]].shape == (16, 8, 8)
    with pytest.raises(ValueError, match="layer b takes 16x8x8"):
        conv_chain_graph([a, ConvShape("b", 16, 8, 8, 1, 16)])
