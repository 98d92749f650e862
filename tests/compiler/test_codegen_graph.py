"""Multi-layer graphs: residual add, concatenation placed without copies (channel counts that
fill whole lane groups and ones that leave gaps), lookup-table activations, DRAM reuse of dead
tensors, the per-layer report, host ops split off the tail, and the clear errors for what is
not supported."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import reference
from compiler.compile import compile_qgraph, layer_report
from compiler.errors import CompileError
from compiler.host_split import run_host_tail, split_host_tail
from compiler.qgraph import QHost
from hw.config import preset
from hw.isa import Activation, Opcode, PoolKind
from hw.layout import read_tensor, write_tensor
from sim.functional import FunctionalMachine

from .codegen_util import GraphBuilder, check_graph

TINY, DEFAULT, LARGE = preset("tiny"), preset("default"), preset("large")
CONFIGS = [TINY, DEFAULT, LARGE]


def _residual(rng):
    b = GraphBuilder()
    x = b.input("x", (17, 23, 19))
    y = b.conv(rng, x, 17, 3, pads=(1, 1, 1, 1), activation=Activation.RELU)
    z = b.add(rng, y, x, activation=Activation.LUT)
    return b.graph([b.conv(rng, z, 20, 1, activation=Activation.LUT)])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_residual_add_with_lut_activations(config):
    rng = np.random.default_rng(1)
    program, stats = check_graph(_residual(rng), config, rng)
    assert stats.instructions["ADD"] >= 1


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_concat_with_channel_gaps(config):
    """3 + 6 + 5 channels: no branch fills whole lane groups, so the concatenated tensor has a
    channel map with gaps; a conv, a global pool and the host read it through the map."""
    rng = np.random.default_rng(2)
    b = GraphBuilder()
    x = b.input("x", (5, 21, 21))
    cat = b.concat(b.conv(rng, x, 3, 1, activation=Activation.RELU),
                   b.conv(rng, x, 6, 3, pads=(1, 1, 1, 1)),
                   b.pool(x, PoolKind.MAX, 3, 1, (1, 1, 1, 1)))
    graph = b.graph([b.conv(rng, cat, 7, 3, stride=2), b.pool(cat, PoolKind.GLOBAL_AVG), cat])
    program, _ = check_graph(graph, config, rng)
    cat_info = next(t for t in program.outputs if t.name == cat)
    assert cat_info.channels and len(cat_info.channels) == 14


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_concat_of_whole_groups_is_free(config):
    """Branches of lanes and 2 x lanes channels: identity map, no copy instruction."""
    rng = np.random.default_rng(3)
    lanes = config.lanes
    b = GraphBuilder()
    x = b.input("x", (lanes, 13, 13))
    cat = b.concat(b.conv(rng, x, lanes, 1), b.conv(rng, x, 2 * lanes, 3, pads=(1, 1, 1, 1)))
    graph = b.graph([b.conv(rng, cat, 5, 3)])
    program, _ = check_graph(graph, config, rng)
    assert next(x for x in program.layers if x["kind"] == "concat")["dram_bytes"] == 0
    stores = [i for i in program.instructions if i.OPCODE is Opcode.STORE and i.size0 > 1]
    assert len(stores) >= 3                                 # two branches + the last conv


def test_chain_reuses_dead_tensors_and_reports(capsys):
    rng = np.random.default_rng(4)
    b = GraphBuilder()
    x = b.input("x", (3, 40, 40))
    y = b.conv(rng, x, 16, 5, stride=2, pads=(2, 2, 2, 2), activation=Activation.RELU)
    y = b.pool(y, PoolKind.MAX, 3, 2)
    y2 = b.conv(rng, y, 20, 3, pads=(1, 1, 1, 1), activation=Activation.RELU)
    y3 = b.conv(rng, y2, 20, 3, pads=(1, 1, 1, 1))
    y4 = b.add(rng, y3, y2)
    graph = b.graph([b.conv(rng, b.pool(y4, PoolKind.GLOBAL_AVG), 10, 1)])
    program, _ = check_graph(graph, TINY, rng)
    every_tensor = sum(-(-t.shape[0] // 4) * 4 * t.shape[1] * t.shape[2]
                       for t in graph.tensors.values())
    assert program.meta["activation_bytes"] < every_tensor
    report = layer_report(program)
    assert report.splitlines()[-1].startswith("total")
    for layer in program.layers:
        assert {"name", "kind", "macs", "tiles", "dram_bytes", "compulsory_bytes"} <= set(layer)
    assert program.layers[0]["macs"] == 16 * 3 * 25 * 20 * 20


def test_host_op_is_a_clear_error():
    b = GraphBuilder()
    x = b.input("x", (4, 1, 1))
    y = b.tensor("y", (4, 1, 1))
    b.ops.append(QHost(name="prob", op_type="Softmax", inputs=(x,), output=y))
    with pytest.raises(CompileError, match="prob.*Softmax.*host"):
        compile_qgraph(b.graph([y]), TINY)


def test_add_of_different_channel_layouts_is_a_clear_error():
    rng = np.random.default_rng(5)
    b = GraphBuilder()
    x = b.input("x", (3, 6, 6))
    cat = b.concat(b.conv(rng, x, 3, 1), b.conv(rng, x, 3, 1))
    other = b.conv(rng, x, 6, 1)
    graph = b.graph([b.add(rng, cat, other)])
    with pytest.raises(CompileError, match="Add.*channel layouts"):
        compile_qgraph(graph, TINY)


def test_host_softmax_at_the_tail_runs_after_the_program():
    rng = np.random.default_rng(6)
    b = GraphBuilder()
    x = b.input("x", (6, 9, 9))
    logits = b.conv(rng, b.pool(b.conv(rng, x, 8, 3), PoolKind.GLOBAL_AVG), 10, 1)
    prob = b.tensor("prob", (10, 1, 1))
    b.ops.append(QHost(name="softmax", op_type="Softmax", inputs=(logits,), output=prob))
    graph = b.graph([prob])
    accel, host = split_host_tail(graph)
    assert [op.name for op in host] == ["softmax"] and accel.outputs == [logits]
    inputs = {"x": rng.integers(-128, 128, (6, 9, 9)).astype(np.int8)}
    program = compile_qgraph(accel, TINY)
    machine = FunctionalMachine(TINY, program.dram_image())
    write_tensor(machine, program.inputs[0], inputs["x"], TINY.lanes)
    machine.run(program.instructions)
    got = run_host_tail(graph, host, {logits: read_tensor(machine, program.outputs[0], 4)})
    np.testing.assert_array_equal(got[prob], reference.run(graph, inputs)[prob])


def test_host_op_feeding_the_accelerator_is_a_clear_error():
    rng = np.random.default_rng(7)
    b = GraphBuilder()
    x = b.input("x", (4, 3, 3))
    y = b.tensor("y", (4, 3, 3))
    b.ops.append(QHost(name="lrn", op_type="LRN", inputs=(x,), output=y, attrs={"size": 3}))
    graph = b.graph([b.conv(rng, y, 4, 1)])
    with pytest.raises(CompileError, match="lrn.*LRN.*end of the network"):
        split_host_tail(graph)


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
def test_nested_concat_with_the_network_input_as_a_branch(config):
    """DenseNet-style: concat(x, f(x)) is itself a branch of a second concat, and the network
    input is written by the host straight into its place inside both."""
    rng = np.random.default_rng(8)
    b = GraphBuilder()
    x = b.input("x", (3, 11, 11))
    inner = b.concat(x, b.conv(rng, x, 5, 3, pads=(1, 1, 1, 1), activation=Activation.RELU))
    outer = b.concat(inner, b.conv(rng, inner, 6, 1))
    program, _ = check_graph(b.graph([b.conv(rng, outer, 7, 3), outer]), config, rng)
    x_info = program.inputs[0]
    outer_info = next(t for t in program.outputs if t.name == outer)
    assert x_info.address == outer_info.address
