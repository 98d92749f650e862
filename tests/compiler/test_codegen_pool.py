"""Pooling compiled and run on the functional model equals the golden reference: max and
average windows (overlapping 3x3/2, padding, stride 4), global average pooling (including a
plane larger than half the input buffer), channel counts that are not multiples of the lanes,
and tiles split over rows."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.compile import compile_qgraph
from compiler.errors import CompileError
from hw.config import preset
from hw.isa import Opcode, PoolKind

from .codegen_util import GraphBuilder, check_graph

TINY, DEFAULT, LARGE = preset("tiny"), preset("default"), preset("large")

CASES = [
    (PoolKind.MAX, 3, 2, (0, 0, 0, 0)),
    (PoolKind.MAX, 3, 2, (1, 1, 1, 1)),
    (PoolKind.MAX, 2, 2, (0, 0, 0, 0)),
    (PoolKind.MAX, 5, 4, (2, 1, 2, 2)),
    (PoolKind.AVG, 3, 1, (1, 1, 1, 1)),
    (PoolKind.AVG, 2, 2, (0, 0, 1, 1)),
    (PoolKind.AVG, 7, 3, (3, 3, 0, 0)),
    (PoolKind.GLOBAL_AVG, 0, 0, (0, 0, 0, 0)),
]


def _pool_graph(channels, h, w, kind, kernel, stride, pads):
    b = GraphBuilder()
    x = b.input("x", (channels, h, w))
    return b.graph([b.pool(x, kind, kernel, stride, pads)])


@pytest.mark.parametrize("config", [TINY, DEFAULT, LARGE], ids=lambda c: c.name)
@pytest.mark.parametrize("kind,kernel,stride,pads", CASES,
                         ids=[f"{k.name}{n}s{s}p{p[0]}" for k, n, s, p in CASES])
def test_pool(config, kind, kernel, stride, pads):
    rng = np.random.default_rng(kernel * 10 + stride)
    channels = {"tiny": 17, "default": 20, "large": 3}[config.name]
    check_graph(_pool_graph(channels, 23, 29, kind, kernel, stride, pads), config, rng)


def test_pool_tiles_split_on_tiny():
    """20 channels x 61 x 67 is 20435 words against a 1023-word input slot."""
    rng = np.random.default_rng(3)
    program, _ = check_graph(_pool_graph(20, 61, 67, PoolKind.MAX, 3, 2, (1, 1, 1, 1)), TINY,
                             rng)
    assert program.layers[0]["tiles"] > 4
    pools = [i for i in program.instructions if i.OPCODE is Opcode.POOL]
    assert len({i.pad_top for i in pools}) == 2             # edge tiles pad, inner ones do not


def test_global_average_of_a_plane_bigger_than_half_the_input_buffer():
    rng = np.random.default_rng(4)
    check_graph(_pool_graph(5, 37, 41, PoolKind.GLOBAL_AVG, 0, 0, (0,) * 4), TINY, rng)


def test_pool_kernel_beyond_config_is_a_clear_error():
    graph = _pool_graph(3, 30, 30, PoolKind.MAX, 13, 1, (0, 0, 0, 0))
    with pytest.raises(CompileError, match="pool.*kernel 13"):
        compile_qgraph(graph, TINY)
