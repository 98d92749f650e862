"""The cycle model on its own: documented latencies, layer ranges, errors."""

import pytest

from hw.config import preset
from hw.isa import Buffer, Load, Store
from sim.dram_model import DramTiming
from sim.perf import predict
from sim.perf.model import layer_ranges

from .programs import raw_program, random_network

TINY = preset("tiny")


def test_end_only_program():
    # start -> request (2) -> AR (3) -> 8 beats from 23 -> word 31 -> fetcher FIFO (2) and
    # the 4-stage checker -> END dispatched 37, ended 38 and the run finishes then: 38 busy
    # cycles (tiny: 4-byte bus, latency 20).
    assert predict(raw_program(TINY, []), DramTiming()).cycles == 38


@pytest.mark.parametrize("words", [1, 4, 20, 40])
def test_load_costs_one_cycle_per_beat(words):
    load = Load(buffer=Buffer.IBUF, buf_addr=0, dram_addr=0, size0=words, count1=1,
                stride1=0, count2=1, stride2=0)
    result = predict(raw_program(TINY, [load]), DramTiming())
    assert result.cycles == 63 + words


def test_store_waits_for_the_write_response():
    store = Store(buffer=Buffer.OBUF, buf_addr=0, dram_addr=0, size0=1, count1=1, stride1=0,
                  count2=1, stride2=0)
    slow = predict(raw_program(TINY, [store]), DramTiming(latency=50))
    fast = predict(raw_program(TINY, [store]), DramTiming(latency=20))
    # the response latency is paid twice: fetching the program and the B response
    assert slow.cycles - fast.cycles == 2 * 30


def test_layer_ranges_cover_the_program():
    program, _ = random_network(0, TINY)
    ranges = layer_ranges(program)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == len(program.instructions) - 2   # everything but END
    for (_, last), (first, _) in zip(ranges, ranges[1:]):
        assert first == last + 1
    result = predict(program, DramTiming())
    assert [layer["name"] for layer in result.layers] == [x["name"] for x in program.layers]
    assert all(layer["cycles"] > 0 for layer in result.layers)
    assert result.counters["array_busy"] == sum(
        i.out_h * i.out_w * i.chunk_count for i in program.instructions
        if type(i).__name__ == "Conv")


def test_a_pop_without_push_is_reported():
    load = Load(pop_next=True, buffer=Buffer.IBUF, buf_addr=0, dram_addr=0, size0=1,
                count1=1, stride1=0, count2=1, stride2=0)
    with pytest.raises(ValueError, match="deadlock"):
        predict(raw_program(TINY, [load]), DramTiming())
