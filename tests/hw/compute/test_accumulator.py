# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import connect

from hw.compute.accumulator import Accumulator
from hw.config import preset
from hw.lint import lint_verilog, to_verilog
from tests.streams import collect, feed, put, run_sim


class AccumulatorWithBuffer(wiring.Component):
    def __init__(self, config):
        self.acc = Accumulator(config=config)
        self.mem = memory.Memory(shape=self.acc.layout, depth=config.acc_words, init=[])
        members = self.acc.signature.members
        super().__init__({"cmd": members["cmd"], "i": members["i"], "o": members["o"],
                          "done": members["done"]})

    def elaborate(self, platform):
        m = Module()
        m.submodules.acc, m.submodules.mem = self.acc, self.mem
        wr = self.mem.write_port()
        connect(m, self.acc.wr, wr)
        connect(m, self.acc.rd, self.mem.read_port(transparent_for=(wr,)))
        for name in ("cmd", "i"):
            connect(m, wiring.flipped(getattr(self, name)), getattr(self.acc, name))
        connect(m, self.acc.o, wiring.flipped(self.o))
        m.d.comb += self.done.eq(self.acc.done)
        return m


def wrap(x, bits):
    return ((x + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def model(passes, columns, bits, depth):
    """NumPy model: per pass, sum = wrap(partial + acc*accumulate); write or output."""
    acc = np.zeros((depth, columns), np.int64)
    out = []
    for addr, accumulate, output, partials in passes:
        total = wrap(partials + (acc[addr:addr + len(partials)] if accumulate else 0), bits)
        if output:
            out += [list(map(int, row)) for row in total]
        else:
            acc[addr:addr + len(partials)] = total
    return out


def run_passes(config, passes, gaps, stalls):
    """Run `passes` through the accumulator with its buffer; (outputs, done strobes)."""
    dut = AccumulatorWithBuffer(config)
    got, dones = [], []
    count = sum(len(p[3]) for p in passes if p[2])

    async def watcher(ctx):
        async for _, _, done in ctx.tick().sample(dut.done):
            dones.append(done)

    async def producer(ctx):
        for i, (addr, accumulate, output, partials) in enumerate(passes):
            await put(ctx, dut.cmd, {"acc_addr": addr, "pixels": len(partials),
                                     "accumulate": accumulate, "output": output})
            await feed(ctx, dut.i, [[int(v) for v in row] for row in partials], gaps=gaps,
                       seed=i)

    async def consumer(ctx):
        got.extend(await collect(ctx, dut.o, count, stalls=stalls, seed=9,
                                 convert=lambda v: [int(x) for x in v]))

    run_sim(dut, producer, consumer, processes=[watcher])
    return got, sum(dones)


@pytest.mark.parametrize("cfg,gaps,stalls", [("tiny", 0.0, 0.0), ("tiny", 0.3, 0.4),
                                             ("default", 0.2, 0.2)])
def test_multi_pass_reduction_matches_model(cfg, gaps, stalls):
    config = preset(cfg)
    bits, cols = config.acc_bits, config.columns
    rng = np.random.default_rng(11)
    passes = []
    # Reductions of 3 passes over 5 pixels, 1-pixel passes back to back (read-after-write one
    # cycle apart) and wrap-around values at the accumulator's extremes.
    for pixels, addr in ((5, 10), (1, 0), (1, 0), (3, config.acc_words - 3)):
        for step in range(3):
            partials = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (pixels, cols))
            passes.append((addr, step > 0, step == 2, partials))
    got, dones = run_passes(config, passes, gaps, stalls)
    assert got == model(passes, cols, bits, config.acc_words)
    assert dones == sum(1 for p in passes if not p[2])   # one per intermediate pass


@pytest.mark.parametrize("gaps,stalls,seed", [(0.0, 0.0, 1), (0.0, 0.5, 2), (0.4, 0.3, 3)])
def test_random_overlapping_passes_match_model(gaps, stalls, seed):
    """Passes of 1-4 pixels at random addresses within 6 words, so that a pass's words
    overlap the previous pass's at any offset (its first word being the one the previous
    pass wrote last included), with random accumulate / output flags; the last pass outputs
    (so that every done strobe comes before the simulation ends)."""
    config = preset("tiny")
    bits, cols = config.acc_bits, config.columns
    rng = np.random.default_rng(seed)
    passes = []
    for i in range(60):
        pixels = int(rng.integers(1, 5))
        passes.append((int(rng.integers(0, 7 - pixels)), bool(rng.random() < 0.7),
                       i == 59 or bool(rng.random() < 0.3),
                       rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (pixels, cols))))
    got, dones = run_passes(config, passes, gaps, stalls)
    assert got == model(passes, cols, bits, config.acc_words)
    assert dones == sum(1 for p in passes if not p[2])


def test_rejects_non_config():
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig"):
        Accumulator(config="tiny")


@pytest.mark.parametrize("cfg", ["tiny", "default"])
def test_verilog_is_lint_clean(cfg):
    lint_verilog(to_verilog(Accumulator(config=preset(cfg)), "accumulator"), "accumulator")
