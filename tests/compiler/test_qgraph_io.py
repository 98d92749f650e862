import numpy as np
import pytest

from compiler import reference
from compiler.qgraph import QAdd, QConcat, QConv, QGraph, QHost, QPool, QTensor
from compiler.qgraph_io import qgraph_from_bytes, qgraph_to_bytes
from hw.isa import Activation, PoolKind


def small_graph(rng):
    w = rng.integers(-128, 128, (4, 3, 3, 3)).astype(np.int8)
    lut = rng.integers(-128, 128, 256).astype(np.int8)
    tensors = {name: QTensor(name, shape, 0.05) for name, shape in (
        ("x", (3, 8, 8)), ("c", (4, 8, 8)), ("p", (4, 4, 4)), ("a", (4, 8, 8)),
        ("cat", (8, 8, 8)), ("g", (8, 1, 1)), ("s", (8, 1, 1)))}
    ops = [
        QConv("conv", "x", "c", w, rng.integers(-1000, 1000, 4).astype(np.int32),
              np.full(4, 20000, np.int16), np.full(4, 17, np.uint8), pads=(1, 1, 1, 1),
              activation=Activation.LUT, lut=lut),
        QPool("pool", "c", "p", PoolKind.MAX, kernel=2, stride=2),
        QAdd("add", "c", "c", "a", mult_a=3, mult_b=-2, shift=1, activation=Activation.RELU),
        QConcat("cat", ("c", "a"), "cat"),
        QPool("gap", "cat", "g", PoolKind.GLOBAL_AVG, mult=16384, shift=20),
        QHost("softmax", "Softmax", ("g",), "s", {"axis": 1}),
    ]
    return QGraph(tensors=tensors, ops=ops, inputs=["x"], outputs=["p", "s"], name="io-test")


def test_round_trip_executes_identically():
    rng = np.random.default_rng(5)
    graph = small_graph(rng)
    again = qgraph_from_bytes(qgraph_to_bytes(graph))
    x = rng.integers(-128, 128, (3, 8, 8)).astype(np.int8)
    want, got = reference.run(graph, {"x": x}), reference.run(again, {"x": x})
    assert again.name == "io-test" and again.outputs == ["p", "s"]
    assert [type(op) for op in again.ops] == [type(op) for op in graph.ops]
    for name in graph.tensors:
        np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize("blob", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_malformed_attachment_is_rejected(blob):
    with pytest.raises(ValueError, match="quantized-graph attachment is malformed"):
        qgraph_from_bytes(blob)
