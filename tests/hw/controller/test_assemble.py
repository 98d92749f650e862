"""BeatAssembler: bus beats to 256-bit words, in order, with gaps and backpressure."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from hw.config import preset
from hw.controller.assemble import BeatAssembler
from hw.isa import INSTR_BITS
from hw.lint import lint_verilog, to_verilog
from tests.streams import collect, feed, run_sim


# `large` has 256-bit beats: the assembler is a plain connection there (linted below).
@pytest.mark.parametrize("name,stalls", [("tiny", 0.0), ("tiny", 0.4), ("default", 0.4)])
def test_beats_to_words(name, stalls):
    config = preset(name)
    beat = config.axi_data_bits
    rng = np.random.default_rng(beat)
    words = [int.from_bytes(rng.bytes(INSTR_BITS // 8), "little") for _ in range(12)]
    beats = [(w >> (beat * k)) & ((1 << beat) - 1) for w in words
             for k in range(INSTR_BITS // beat)]
    dut = BeatAssembler(config=config)
    got = []

    async def source(ctx):
        await feed(ctx, dut.i, beats, gaps=stalls, seed=1)

    async def sink(ctx):
        got.extend(await collect(ctx, dut.o, len(words), stalls=stalls, seed=2))

    run_sim(dut, source, sink)
    assert got == words


def test_full_rate_and_latency():
    config = preset("tiny")    # 32-bit beats: 8 per word
    dut = BeatAssembler(config=config)
    valid_cycles = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for cycle in range(24):
            ctx.set(dut.i.payload, cycle)
            if ctx.get(dut.o.valid):
                valid_cycles.append(cycle)
            assert ctx.get(dut.i.ready)
            await ctx.tick()

    run_sim(dut, bench)
    assert valid_cycles == [8, 16]   # beats 0-7 accepted in cycles 0-7, word in cycle 8


# The half-built component is never elaborated; collect it here, under this filter.
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_rejects_wide_beats():
    with pytest.raises(ValueError, match="at most 256 bits"):
        BeatAssembler(config=preset("large").replace(axi_data_bits=512, rows=64, columns=64,
                                                     wbuf_words=4096))
    gc.collect()


@pytest.mark.parametrize("name", ["tiny", "default", "large"])
def test_lint(name):
    lint_verilog(to_verilog(BeatAssembler(config=preset(name)), "assembler"), "assembler")
