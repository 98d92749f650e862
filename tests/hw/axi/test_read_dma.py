"""ReadDMA against a NumPy gather of the slave memory, under latency, bandwidth limits and
random stalls on every channel, plus exact cycle counts of a streaming case."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.axi.read_dma import ReadDMA
from hw.axi.signatures import AXIResp
from hw.config import preset
from hw.lint import lint_verilog, to_verilog
from sim.perf.dram import bursts_of
from tests.hw.axi.axi_model import AXI4Memory
from tests.hw.axi.dma_cases import descriptor_payload, random_descriptor, word_offsets
from tests.streams import put

MEMORY_BYTES = 1 << 14


def run_reads(config, jobs, memory, *, out_stalls=0.0, seed=0, **model):
    """Run `jobs` [(desc, word_bytes)] through a ReadDMA; return the output words as
    (data bytes, index, tag, last, resp), the model, and {"last": the cycle (clock edge,
    counted from 0 as the model does) of the last word handshake, "error": the sticky error
    output at the end}."""
    dut = ReadDMA(config=config)
    slave = AXI4Memory(memory, data_bytes=config.axi_data_bytes,
                       max_burst_beats=config.max_burst_beats, seed=seed, **model)
    expected_words = sum(d["size0"] * d["count1"] * d["count2"] for d, _ in jobs)
    words, info = [], {}
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    slave.add_to(sim, dut.bus)

    async def send(ctx):
        for tag, (desc, word_bytes) in enumerate(jobs):
            await put(ctx, dut.i, descriptor_payload(config, desc, word_bytes, tag % 16))

    async def receive(ctx):
        rng = np.random.default_rng(seed + 1)
        cycle = job = 0
        while len(words) < expected_words:
            ready = not (out_stalls and rng.random() < out_stalls)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                data = int(payload.data).to_bytes(dut.max_word_bytes, "little")
                words.append((data[:jobs[job][1]], payload.index, payload.tag, payload.last,
                              payload.resp))
                job += payload.last
                info["last"] = cycle
            cycle += 1
        ctx.set(dut.o.ready, 0)
        assert not ctx.get(dut.o.valid) and not ctx.get(dut.busy)
        info["error"] = ctx.get(dut.error)

    sim.add_testbench(send)
    sim.add_testbench(receive)
    sim.run()
    return words, slave, info


def check_words(jobs, memory, words) -> None:
    position = 0
    for tag, (desc, word_bytes) in enumerate(jobs):
        offsets = word_offsets(desc, word_bytes)
        for index, want in enumerate(memory[offsets]):
            data, got_index, got_tag, last, resp = words[position]
            assert data == want.tobytes(), (tag, index)
            assert (got_index, got_tag, last, resp) == \
                (index, tag % 16, index == len(offsets) - 1, AXIResp.OKAY), (tag, index)
            position += 1
    assert position == len(words)


def random_memory(seed):
    return np.random.default_rng(seed).integers(0, 256, MEMORY_BYTES, dtype=np.uint8)


@pytest.mark.parametrize("name,dims,model,out_stalls", [
    ("tiny", 1, {}, 0.0),
    ("tiny", 2, {"latency": 7, "stall": 0.3}, 0.3),
    ("tiny", 3, {"latency": 3, "bytes_per_cycle": 2.5, "stall": 0.1}, 0.2),
    ("default", 3, {"latency": 12, "stall": 0.25}, 0.25),
    ("large", 2, {"latency": 20, "bytes_per_cycle": 16, "stall": 0.1}, 0.1),
])
def test_random_descriptors(name, dims, model, out_stalls):
    config = preset(name)
    rng = np.random.default_rng([dims, config.rows])
    memory = random_memory(dims)
    sizes = [config.word_bytes, config.pbuf_word_bytes, config.axi_data_bytes, 32]
    jobs = []
    for _ in range(10):
        word_bytes = int(rng.choice(sizes))
        jobs.append((random_descriptor(rng, word_bytes=word_bytes, dims=dims,
                                       memory_bytes=MEMORY_BYTES, max_words=48), word_bytes))
    words, _, info = run_reads(config, jobs, memory, out_stalls=out_stalls, seed=dims,
                               **model)
    check_words(jobs, memory, words)
    assert info["error"] == AXIResp.OKAY


def test_bursts_split_at_4k_and_max_length():
    config = preset("tiny")   # 4-byte beats, 16-beat bursts
    beat = config.axi_data_bytes
    memory = random_memory(5)
    row = {"size0": 40, "count1": 2, "stride1": 4096, "count2": 1, "stride2": 0}
    jobs = [({**row, "dram_addr": 4096 - 3 * beat}, beat),           # crosses 4 KiB per row
            ({**row, "size0": 16, "dram_addr": 64}, beat),             # exactly one burst
            ({**row, "size0": 17, "dram_addr": 64, "count1": 1}, beat),  # one beat past
            ({**row, "size0": 20, "dram_addr": 84, "count1": 1}, beat)]  # mid-block start
    words, slave, _ = run_reads(config, jobs, memory, latency=4, stall=0.2)
    check_words(jobs, memory, words)
    lengths = [(addr, length + 1) for _, addr, length in slave.ar_log]
    assert lengths == [(4084, 3), (4096, 16), (4160, 16), (4224, 5),
                       (8180, 3), (8192, 16), (8256, 16), (8320, 5),
                       (64, 16), (4160, 16), (64, 16), (128, 1),
                       (84, 11), (128, 9)]     # to the 16-beat block boundary, then the rest
    assert bursts_of(config, 84, 20, 1, 4096, 1, 0, beat) == [11, 9]   # the cycle model


@pytest.mark.parametrize("max_burst_beats", [16, 4])
def test_words_of_several_beats(max_burst_beats):
    """A PBUF word on tiny is 32 bytes = 8 beats of 4 bytes; with 4-beat bursts every word
    spans two bursts."""
    config = preset("tiny").replace(max_burst_beats=max_burst_beats)
    memory = random_memory(6)
    word = config.pbuf_word_bytes
    jobs = [({"dram_addr": 4096 - 3 * word, "size0": 5, "count1": 3, "stride1": 7 * word,
              "count2": 2, "stride2": 30 * word}, word)]
    words, slave, _ = run_reads(config, jobs, memory, latency=2, stall=0.2, out_stalls=0.3)
    check_words(jobs, memory, words)
    assert all(length + 1 in (8, 16) if max_burst_beats == 16 else length + 1 == 4
               for _, _, length in slave.ar_log)


@pytest.mark.parametrize("latency", [1, 30])
def test_streaming_cycle_count(latency):
    """N beats with no stalls, across two descriptors and a 4 KiB split: ARVALID the cycle
    after the descriptor, the first beat `latency` cycles after the AR, then one beat per
    cycle; the last word leaves one cycle after its beat: N + latency + 1 cycles from the
    descriptor handshake to the last word handshake."""
    config = preset("default")
    memory = random_memory(7)
    jobs = [({"dram_addr": 256, "size0": 40, "count1": 2, "stride1": 4096, "count2": 1,
              "stride2": 0}, config.word_bytes),
            ({"dram_addr": 9000 - 9000 % 16, "size0": 48, "count1": 1, "stride1": 0,
              "count2": 1, "stride2": 0}, config.word_bytes)]
    words, slave, info = run_reads(config, jobs, memory, latency=latency)
    check_words(jobs, memory, words)
    beats = 40 * 2 + 48
    # The first descriptor is taken at clock edge 0 and its first AR at edge 1.
    assert slave.ar_log[0][0] == 1
    assert slave.r_cycles == list(range(1 + latency, 1 + latency + beats))
    assert info["last"] == beats + latency + 1


def test_single_beat_bursts_hide_15_cycles_of_latency():
    """64 one-word rows (one 1-beat burst each): 16 bursts in flight keep R busy every cycle
    when the slave answers 15 cycles after the address."""
    config = preset("default")
    memory = random_memory(9)
    latency = 15
    jobs = [({"dram_addr": 512, "size0": 1, "count1": 64, "stride1": 48, "count2": 1,
              "stride2": 0}, config.word_bytes)]
    words, slave, info = run_reads(config, jobs, memory, latency=latency)
    check_words(jobs, memory, words)
    assert slave.r_cycles == list(range(1 + latency, 1 + latency + 64))
    assert info["last"] == 64 + latency + 1


def test_error_response_is_reported():
    config = preset("tiny")
    memory = random_memory(8)
    jobs = [({"dram_addr": 0, "size0": 8, "count1": 2, "stride1": 1024, "count2": 1,
              "stride2": 0}, config.word_bytes)]
    words, _, info = run_reads(config, jobs, memory,
                               errors=[(1024 + 8, 1024 + 12, AXIResp.SLVERR)])
    assert [w[4] for w in words] == [AXIResp.OKAY] * 10 + [AXIResp.SLVERR] + [AXIResp.OKAY] * 5
    assert info["error"] == AXIResp.SLVERR


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_verilog_lint(name):
    lint_verilog(to_verilog(ReadDMA(config=preset(name)), "read_dma"), "read_dma")
