# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import connect

from hw.compute.buffer_writer import BufferWriter
from hw.compute.linear_addresses import LinearAddressGenerator
from hw.lint import lint_verilog, to_verilog
from tests.streams import collect, feed, put, run_sim

COMMANDS = [(5, 3), (200, 1), (0, 7), (65530, 6)]


@pytest.mark.parametrize("stalls", [0.0, 0.5])
def test_linear_addresses(stalls):
    dut = LinearAddressGenerator(tag_shape=2)
    got = []

    async def producer(ctx):
        for i, (base, count) in enumerate(COMMANDS):
            await put(ctx, dut.cmd, {"base": base, "count": count, "tag": i})

    async def consumer(ctx):
        total = sum(c for _, c in COMMANDS)
        got.extend(await collect(ctx, dut.o, total, stalls=stalls,
                                 convert=lambda v: (v.addr, v.last, v.tag)))

    run_sim(dut, producer, consumer)
    want = [((base + k) % 65536, int(k == count - 1), i)
            for i, (base, count) in enumerate(COMMANDS) for k in range(count)]
    assert got == want


def test_linear_addresses_stream_without_gaps_between_commands():
    dut = LinearAddressGenerator()
    valid = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.cmd.valid, 1)
        for count in (3, 4):
            ctx.set(dut.cmd.payload, {"base": 10 * count, "count": count})
            await ctx.tick().until(dut.cmd.ready)
        ctx.set(dut.cmd.valid, 0)
        for _ in range(10):
            await ctx.tick()

    async def watcher(ctx):
        async for _, _, v in ctx.tick().sample(dut.o.valid):
            valid.append(v)

    run_sim(dut, tb, processes=[watcher])
    # 1 cycle of latency, then the 3 + 4 addresses on 7 consecutive cycles.
    assert valid[:9] == [0, 1, 1, 1, 1, 1, 1, 1, 0]


class WriterWithMemory(wiring.Component):
    def __init__(self):
        self.writer = BufferWriter(addr_width=6, shape=8)
        self.mem = memory.Memory(shape=8, depth=64, init=[])
        members = self.writer.signature.members
        super().__init__({"cmd": members["cmd"], "i": members["i"], "done": members["done"]})

    def elaborate(self, platform):
        m = Module()
        m.submodules.writer, m.submodules.mem = self.writer, self.mem
        connect(m, self.writer.wr, self.mem.write_port())
        connect(m, wiring.flipped(self.cmd), self.writer.cmd)
        connect(m, wiring.flipped(self.i), self.writer.i)
        m.d.comb += self.done.eq(self.writer.done)
        return m


@pytest.mark.parametrize("gaps", [0.0, 0.4])
def test_buffer_writer_fills_regions_and_strobes_done(gaps):
    rng = np.random.default_rng(3)
    regions = [(3, 5), (30, 0), (40, 1), (50, 0), (10, 12)]   # empty regions write nothing
    words = [[int(v) for v in rng.integers(0, 256, n)] for _, n in regions]
    dut = WriterWithMemory()
    dones = []
    contents = {}

    async def producer(ctx):
        for (base, count), ws in zip(regions, words):
            await put(ctx, dut.cmd, {"base": base, "count": count})
            await feed(ctx, dut.i, ws, gaps=gaps, seed=base)
        for _ in range(3):
            await ctx.tick()
        contents.update({a: ctx.get(dut.mem.data[a]) for a in range(64)})

    async def watcher(ctx):
        async for _, _, done in ctx.tick().sample(dut.done):
            dones.append(done)

    run_sim(dut, producer, processes=[watcher], deadline_cycles=1000)
    assert contents, "the writer did not take every command and word within 1000 cycles"
    for (base, count), ws in zip(regions, words):
        assert [contents[base + k] for k in range(count)] == ws
    assert contents[30] == contents[50] == 0
    assert sum(dones) == sum(count != 0 for _, count in regions)


def test_verilog_is_lint_clean():
    lint_verilog(to_verilog(LinearAddressGenerator(tag_shape=3), "linear"), "linear")
    lint_verilog(to_verilog(BufferWriter(addr_width=10, shape=64), "writer"), "writer")
