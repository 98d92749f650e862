"""The whole-network benchmark's helpers: traffic counts on a hand-made program, the per-layer
cycle attribution, and the rows of LeNet-5 compiled for `tiny` (the big networks are only
compiled by `make bench`)."""

import pytest

from bench.networks import (NETWORKS, cached_program, compulsory_bytes, conv_shapes,
                            dram_traffic, layer_cycles, pct, source_hash)
from bench.suites.networks import TIMING, kind_rows, layer_rows, network_row
from hw.config import preset
from hw.isa import Buffer, End, Load, Store
from hw.program import Program, Segment, TensorInfo
from sim.perf import predict

TINY = preset("tiny")   # 4 lanes, 4-byte words, pbuf words of 4 x 8 = 32 bytes


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    cache = tmp_path_factory.mktemp("networks")
    program, seconds, cached = cached_program("lenet5", TINY, cache=cache)
    return program, seconds, cached, cache


def _hand_made() -> Program:
    instructions = [
        # 3 x 2 x 5 IBUF words of 4 bytes = 120 bytes read.
        Load(buffer=Buffer.IBUF, dram_addr=0, size0=5, count1=2, stride1=64, count2=3,
             stride2=256),
        # 2 PBUF words of 32 bytes = 64 bytes read.
        Load(buffer=Buffer.PBUF, dram_addr=1024, size0=2, count1=1, count2=1),
        # 7 OBUF words = 28 bytes written.
        Store(buffer=Buffer.OBUF, dram_addr=2048, size0=7, count1=1, count2=1),
        End(),
    ]
    return Program(
        config=TINY, instructions=instructions,
        segments=[Segment("scratch", 4096, bytes(8)), Segment("conv.weights", 4160, bytes(100)),
                  Segment("conv.params", 4288, bytes(64))],
        # 6 channels pad to 2 groups of 4 lanes: 8 x 3 x 3 = 72 bytes; 3 x 1 x 1 -> 4 bytes.
        inputs=[TensorInfo("x", 0, (1, 6, 3, 3), 0.1)],
        outputs=[TensorInfo("y", 2048, (1, 3, 1, 1), 0.1)])


def test_dram_traffic_counts_loads_and_stores_by_buffer_word():
    assert dram_traffic(_hand_made()) == (120 + 64, 28)


def test_compulsory_bytes_is_constants_input_and_output_once_without_scratch():
    assert compulsory_bytes(_hand_made()) == 100 + 64 + 72 + 4


def test_layer_cycles_attributes_each_cycle_once():
    spans = [{"end": 100}, {"cycles": 0}, {"end": 90}, {"end": 250}, {"end": 250}]
    assert layer_cycles(spans) == [100, 0, 0, 150, 0]


def test_pct():
    assert pct(1, 3) == 33.33
    assert pct(5, 0) is None


def test_source_hash_is_stable():
    assert source_hash() == source_hash()
    assert len(source_hash()) == 12


def test_programs_are_cached_on_disk(lenet):
    program, seconds, cached, cache = lenet
    again, seconds_again, cached_again = cached_program("lenet5", TINY, cache=cache)
    assert not cached and cached_again
    assert seconds_again == round(seconds, 2)
    assert again.instructions == program.instructions


def test_conv_shapes_of_lenet5(lenet):
    shapes = list(conv_shapes(lenet[0]).values())
    assert [(s.in_channels, s.height, s.kernel, s.out_channels) for s in shapes[:3]] == \
        [(1, 32, 5, 6), (6, 14, 5, 16), (16, 5, 5, 120)]
    assert [s.kernel for s in shapes[3:]] == [1, 1]      # the two fully connected layers


def test_rows_of_lenet5(lenet):
    program = lenet[0]
    result = predict(program, TIMING)
    row = network_row("lenet5", program, result, compile_seconds=1.0, cached=False,
                      model_seconds=0.1)
    assert row["cycles"] == result.cycles
    assert row["macs"] == sum(layer["macs"] for layer in program.layers) > 400_000
    assert row["mac_util_pct"] == pct(row["macs"], result.cycles * 16)
    assert row["dram_read_bytes"] + row["dram_write_bytes"] > row["compulsory_bytes"]
    assert row["images_per_s"] == round(100e6 / result.cycles, 2)
    rows = layer_rows("lenet5", program, result, kernel=5)
    assert [r["shape"] for r in rows] == ["1@32x32 -> 6, 5x5/1", "6@14x14 -> 16, 5x5/1",
                                          "16@5x5 -> 120, 5x5/1"]
    assert sum(layer_cycles(result.layers)) <= result.cycles
    assert all(0 < r["mapping_bound"] <= r["span_cycles"] for r in rows)
    kinds = kind_rows("lenet5", program, result)
    assert [k["kind"] for k in kinds] == ["conv 5x5", "pool", "conv 1x1"]
    assert [k["layers"] for k in kinds] == [3, 2, 2]
    assert sum(k["cycles"] for k in kinds) == sum(layer_cycles(result.layers))
    assert sum(k["macs"] for k in kinds) == row["macs"]


def test_networks_are_the_seed_networks():
    from models.imagenet import NETWORKS as SEED

    assert set(NETWORKS) == set(SEED)
