# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import connect

from hw.buffers.reader import BufferReader, RegisteredBufferReader
from hw.lint import lint_verilog, to_verilog
from tests.streams import collect, feed, run_sim


class ReaderWithMemory(wiring.Component):
    """The reader wired to a memory with known contents: the unit under test."""

    def __init__(self, init, width, reader=BufferReader):
        self.mem = memory.Memory(shape=width, depth=len(init), init=init)
        self.reader = reader(addr_width=(len(init) - 1).bit_length(), shape=width,
                                   tag_shape=4)
        members = self.reader.signature.members
        super().__init__({"a": members["a"], "o": members["o"]})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = self.mem
        m.submodules.reader = self.reader
        connect(m, self.reader.rd, self.mem.read_port())
        connect(m, wiring.flipped(self.a), self.reader.a)
        connect(m, self.reader.o, wiring.flipped(self.o))
        return m


READERS = [BufferReader, RegisteredBufferReader]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("gaps,stalls", [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.3, 0.3)])
def test_reads_every_address_in_order(reader, gaps, stalls):
    rng = np.random.default_rng(7)
    init = [int(v) for v in rng.integers(0, 1 << 16, 64)]
    dut = ReaderWithMemory(init, 16, reader)
    addrs = [int(a) for a in rng.integers(0, 64, 200)]
    got = []

    async def producer(ctx):
        await feed(ctx, dut.a, [{"addr": a, "tag": a % 16} for a in addrs], gaps=gaps, seed=3)

    async def consumer(ctx):
        got.extend(await collect(ctx, dut.o, len(addrs), stalls=stalls, seed=4,
                                 convert=lambda v: (v.data, v.tag)))

    run_sim(dut, producer, consumer)
    assert got == [(init[a], a % 16) for a in addrs]


@pytest.mark.parametrize("reader,latency", [(BufferReader, 1), (RegisteredBufferReader, 2)])
def test_streams_one_word_per_cycle_after_latency(reader, latency):
    assert reader.LATENCY == latency
    init = list(range(32))
    dut = ReaderWithMemory(init, 8, reader)
    seen = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.a.valid, 1)
        for cycle in range(32 + latency):
            ctx.set(dut.a.payload, {"addr": min(cycle, 31), "tag": 0})
            ctx.set(dut.a.valid, cycle < 32)
            await ctx.tick()
            seen.append(ctx.get(dut.o.payload.data) if ctx.get(dut.o.valid) else None)

    run_sim(dut, tb)
    # The word of the address accepted at edge t is valid after edge t + LATENCY (seen[k] is
    # sampled after edge k), and a new word follows on every edge.
    assert seen[:latency - 1] == [None] * (latency - 1)
    assert seen[latency - 1:latency + 31] == init
    assert seen[latency + 31] is None


def test_registered_reader_holds_both_words_while_stalled():
    """With `o` stalled, the output register and the read port each hold a word and no address
    is accepted; once `o` is ready again the words follow one per cycle."""
    init = list(range(100, 132))
    dut = ReaderWithMemory(init, 8, RegisteredBufferReader)
    log = []

    async def tb(ctx):
        ctx.set(dut.a.valid, 1)
        addr = 0
        for cycle in range(12):
            ctx.set(dut.a.payload, {"addr": addr, "tag": 0})
            ctx.set(dut.o.ready, not 3 <= cycle < 8)
            ready = ctx.get(dut.a.ready)
            log.append((ready, ctx.get(dut.o.payload.data) if ctx.get(dut.o.valid) else None))
            addr += ready
            await ctx.tick()

    run_sim(dut, tb)
    # Cycle 3 stalls with word 1 on `o` and word 2 in the read port: address 3 waits until
    # word 1 is taken in cycle 8.
    assert [r for r, _ in log] == [1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert [d for _, d in log] == [None, None, 100] + [101] * 6 + [102, 103, 104]


def test_rejects_bad_address_width():
    with pytest.raises(ValueError, match="addr_width must be a positive integer"):
        BufferReader(addr_width=0, shape=8)


@pytest.mark.parametrize("reader", READERS)
def test_verilog_is_lint_clean(reader):
    lint_verilog(to_verilog(reader(addr_width=11, shape=32, tag_shape=3), "reader"), "reader")
