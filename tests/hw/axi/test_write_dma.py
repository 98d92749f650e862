"""WriteDMA against a NumPy scatter into the slave memory, under latency, bandwidth limits
and random stalls on every channel, plus exact cycle counts of a streaming case."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.axi.signatures import AXIResp
from hw.axi.write_dma import WriteDMA
from hw.config import preset
from hw.lint import lint_verilog, to_verilog
from tests.hw.axi.axi_model import AXI4Memory
from tests.hw.axi.dma_cases import descriptor_payload, random_descriptor, word_offsets
from tests.streams import put

MEMORY_BYTES = 1 << 14


def run_writes(config, jobs, memory, *, word_gaps=0.0, done_stalls=0.0, seed=0, **model):
    """Write `jobs` [(desc, word_bytes, words uint8 [n, word_bytes])] through a WriteDMA into
    `memory` (changed in place); return the completions (tag, resp), the model and {"last":
    the cycle of the last completion handshake (clock edges counted from 0), "error": the
    sticky error output at the end}."""
    dut = WriteDMA(config=config)
    slave = AXI4Memory(memory, data_bytes=config.axi_data_bytes,
                       max_burst_beats=config.max_burst_beats, seed=seed, **model)
    completions, info = [], {}
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    slave.add_to(sim, dut.bus)

    async def send_descriptors(ctx):
        for tag, (desc, word_bytes, _) in enumerate(jobs):
            await put(ctx, dut.i, descriptor_payload(config, desc, word_bytes, tag % 16))

    async def send_words(ctx):
        rng = np.random.default_rng(seed + 2)
        for _, _, words in jobs:
            for word in words:
                while word_gaps and rng.random() < word_gaps:
                    await ctx.tick()
                await put(ctx, dut.words, int.from_bytes(word.tobytes(), "little"))

    async def receive(ctx):
        rng = np.random.default_rng(seed + 1)
        cycle = 0
        while len(completions) < len(jobs):
            ready = not (done_stalls and rng.random() < done_stalls)
            ctx.set(dut.done.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.done.valid, dut.done.payload)
            if valid and ready:
                completions.append((payload.tag, payload.resp))
                info["last"] = cycle
            cycle += 1
        ctx.set(dut.done.ready, 0)
        assert not ctx.get(dut.busy)
        info["error"] = ctx.get(dut.error)

    for tb in (send_descriptors, send_words, receive):
        sim.add_testbench(tb)
    sim.run()
    return completions, slave, info


def scatter(jobs, memory):
    want = memory.copy()
    for desc, word_bytes, words in jobs:
        want[word_offsets(desc, word_bytes)] = words
    return want


def random_jobs(config, rng, *, dims, count, max_words):
    sizes = [config.word_bytes, config.pbuf_word_bytes, config.axi_data_bytes, 32]
    jobs = []
    for _ in range(count):
        word_bytes = int(rng.choice(sizes))
        desc = random_descriptor(rng, word_bytes=word_bytes, dims=dims,
                                 memory_bytes=MEMORY_BYTES, max_words=max_words, disjoint=True)
        n = desc["size0"] * desc["count1"] * desc["count2"]
        jobs.append((desc, word_bytes, rng.integers(0, 256, (n, word_bytes), dtype=np.uint8)))
    return jobs


@pytest.mark.parametrize("name,dims,model,gaps,stalls", [
    ("tiny", 1, {}, 0.0, 0.0),
    ("tiny", 2, {"latency": 6, "stall": 0.3}, 0.3, 0.3),
    ("tiny", 3, {"latency": 2, "bytes_per_cycle": 1.5, "stall": 0.1}, 0.1, 0.5),
    ("default", 3, {"latency": 10, "stall": 0.25}, 0.25, 0.25),
    ("large", 2, {"latency": 20, "bytes_per_cycle": 16, "stall": 0.1}, 0.1, 0.1),
])
def test_random_descriptors(name, dims, model, gaps, stalls):
    config = preset(name)
    rng = np.random.default_rng([dims, config.rows, 1])
    memory = rng.integers(0, 256, MEMORY_BYTES, dtype=np.uint8)
    jobs = random_jobs(config, rng, dims=dims, count=10, max_words=48)
    want = scatter(jobs, memory)
    completions, _, info = run_writes(config, jobs, memory, word_gaps=gaps,
                                      done_stalls=stalls, seed=dims, **model)
    assert completions == [(n % 16, AXIResp.OKAY) for n in range(len(jobs))]
    assert info["error"] == AXIResp.OKAY
    np.testing.assert_array_equal(memory, want)


def test_bursts_split_at_4k_and_words_of_several_beats():
    config = preset("tiny")   # 4-byte beats, 16-beat bursts, 32-byte PBUF words (8 beats)
    beat, word = config.axi_data_bytes, config.pbuf_word_bytes
    rng = np.random.default_rng(11)
    memory = np.zeros(MEMORY_BYTES, np.uint8)
    descs = [({"dram_addr": 4096 - 3 * beat, "size0": 40, "count1": 2, "stride1": 4096,
               "count2": 1, "stride2": 0}, beat),
             ({"dram_addr": 4096 - 3 * word, "size0": 5, "count1": 2, "stride1": 6 * word,
               "count2": 2, "stride2": 2 * 4096}, word)]
    jobs = [(d, wb, rng.integers(0, 256, (d["size0"] * d["count1"] * d["count2"], wb),
                                 dtype=np.uint8)) for d, wb in descs]
    want = scatter(jobs, memory)
    _, slave, _ = run_writes(config, jobs, memory, latency=3, stall=0.2, word_gaps=0.2)
    np.testing.assert_array_equal(memory, want)
    lengths = [(addr, length + 1) for _, addr, length in slave.aw_log]
    assert lengths[:8] == [(4084, 3), (4096, 16), (4160, 16), (4224, 5),
                           (8180, 3), (8192, 16), (8256, 16), (8320, 5)]
    # A 5-word row of 8-beat words, 3 words before the 4 KiB boundary: 24 beats, then 16;
    # bursts stay within aligned 16-beat blocks: 8 to the block boundary, 16, then 16.
    assert lengths[8:11] == [(4000, 8), (4032, 16), (4096, 16)]


def test_words_spanning_bursts():
    """With 4-beat bursts every 8-beat PBUF word of tiny spans two bursts."""
    config = preset("tiny").replace(max_burst_beats=4)
    rng = np.random.default_rng(14)
    memory = rng.integers(0, 256, MEMORY_BYTES, dtype=np.uint8)
    word = config.pbuf_word_bytes
    jobs = []
    for _ in range(3):
        desc = random_descriptor(rng, word_bytes=word, dims=3, memory_bytes=MEMORY_BYTES,
                                 max_words=12, disjoint=True)
        n = desc["size0"] * desc["count1"] * desc["count2"]
        jobs.append((desc, word, rng.integers(0, 256, (n, word), dtype=np.uint8)))
    want = scatter(jobs, memory)
    _, slave, _ = run_writes(config, jobs, memory, latency=2, stall=0.2, word_gaps=0.2)
    np.testing.assert_array_equal(memory, want)
    assert all(length + 1 <= 4 for _, _, length in slave.aw_log)


@pytest.mark.parametrize("latency", [1, 30])
def test_streaming_cycle_count(latency):
    """N beats, words always there, no stalls: AWVALID 2 cycles after the descriptor, the
    first W beat one cycle later and then one per cycle; the last B `latency` cycles after
    the last beat and the completion one cycle after that."""
    config = preset("default")
    rng = np.random.default_rng(12)
    memory = np.zeros(MEMORY_BYTES, np.uint8)
    desc = {"dram_addr": 4096 - 256, "size0": 40, "count1": 2, "stride1": 1024, "count2": 1,
            "stride2": 0}
    jobs = [(desc, config.word_bytes, rng.integers(0, 256, (80, 16), dtype=np.uint8))]
    want = scatter(jobs, memory)
    _, slave, info = run_writes(config, jobs, memory, latency=latency)
    np.testing.assert_array_equal(memory, want)
    beats = 80
    assert slave.aw_log[0][0] == 2
    assert slave.w_cycles == list(range(3, 3 + beats))
    assert slave.b_cycles[-1] == 2 + beats + latency
    assert info["last"] == 3 + beats + latency


def test_error_response_is_reported():
    config = preset("tiny")
    rng = np.random.default_rng(13)
    memory = np.zeros(MEMORY_BYTES, np.uint8)
    descs = [{"dram_addr": 0, "size0": 8, "count1": 1, "stride1": 0, "count2": 1, "stride2": 0},
             {"dram_addr": 1024, "size0": 20, "count1": 1, "stride1": 0, "count2": 1,
              "stride2": 0},
             {"dram_addr": 2048, "size0": 4, "count1": 1, "stride1": 0, "count2": 1,
              "stride2": 0}]
    jobs = [(d, 4, rng.integers(0, 256, (d["size0"], 4), dtype=np.uint8)) for d in descs]
    completions, _, info = run_writes(config, jobs, memory,
                                      errors=[(1024 + 70, 1024 + 74, AXIResp.DECERR)])
    assert completions == [(0, AXIResp.OKAY), (1, AXIResp.DECERR), (2, AXIResp.OKAY)]
    assert info["error"] == AXIResp.DECERR


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_verilog_lint(name):
    lint_verilog(to_verilog(WriteDMA(config=preset(name)), "write_dma"), "write_dma")
