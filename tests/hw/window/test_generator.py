# amaranth: UnusedElaboratable=no
"""WindowGenerator against the NumPy window model: every chunk, and the clock edge of every
input word and output chunk when nothing stalls."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hw import isa
from hw.config import preset
from hw.lint import lint_verilog, to_verilog
from hw.window import WindowGenerator, WindowPass
from tests.streams import collect, feed, put, run_sim
from tests.hw.window.model import (pack, pass_edges, transfer_monitor, unpack,
                                   window_chunks)

TINY = preset("tiny")
DEFAULT = preset("default")


def conv_pass(**fields) -> WindowPass:
    return WindowPass(**{"pad_top": 0, "pad_left": 0, "chunk_start": 0, **fields})


def run_passes(config, passes, *, seed=0, gaps=0.0, stalls=0.0, row_slots=None):
    """Run the passes back to back; returns (tiles, chunks seen, edges of cmd accepts, input
    words and output chunks, final error flag)."""
    rng = np.random.default_rng(seed)
    dut = WindowGenerator(config=config, row_slots=row_slots)
    tiles = [rng.integers(-128, 128, (p.in_h, p.in_w, p.groups, config.rows), dtype=np.int8)
             for p in passes]
    words = [pack(word) for t in tiles for word in t.reshape(-1, config.rows)]  # y, x, group
    assert len(words) == sum(p.input_words for p in passes)
    total = sum(p.chunks for p in passes)
    seen, edges, error = [], {"cmd": [], "i": [], "o": []}, []

    async def commands(ctx):
        for p in passes:
            await put(ctx, dut.cmd, p.cmd())
        error.append(None)   # every cmd accepted

    async def inputs(ctx):
        await feed(ctx, dut.i, words, gaps=gaps, seed=seed + 1)

    async def outputs(ctx):
        seen.extend(await collect(
            ctx, dut.o, total, stalls=stalls, seed=seed + 2,
            convert=lambda v: (int(v.data), int(v.d), int(v.inside), int(v.last), int(v.end))))
        while not error:     # an illegal cmd emits nothing: wait for its acceptance
            await ctx.tick()
        error[0] = ctx.get(dut.error)

    ports = {name: getattr(dut, name) for name in edges}
    run_sim(dut, commands, inputs, outputs, processes=[transfer_monitor(ports, edges)])
    return tiles, seen, edges, error[0], dut.row_slots


def check(config, passes, *, seed=0, gaps=0.0, stalls=0.0, row_slots=None):
    for p in passes:
        p.check(config)
    tiles, seen, edges, error, slots = run_passes(config, passes, seed=seed, gaps=gaps,
                                                  stalls=stalls, row_slots=row_slots)
    assert error == 0
    at = 0
    for p, tile in zip(passes, tiles):
        chunks, inside = window_chunks(tile, p)
        got = seen[at:at + p.chunks]
        at += p.chunks
        data = np.array([unpack(g[0], config.rows) for g in got]).reshape(chunks.shape)
        np.testing.assert_array_equal(data, chunks)
        d = np.array([g[1] for g in got]).reshape(inside.shape)
        np.testing.assert_array_equal(d, np.broadcast_to(np.arange(p.chunk_count), d.shape))
        np.testing.assert_array_equal(np.array([g[2] for g in got]).reshape(inside.shape),
                                      inside)
        last = np.zeros(inside.shape, int)
        last[:, -1] = 1
        np.testing.assert_array_equal(np.array([g[3] for g in got]).reshape(inside.shape), last)
        assert [g[4] for g in got] == [0] * (p.chunks - 1) + [1]
    if gaps == 0 and stalls == 0:   # exact timing, edge by edge
        want_cmd, want_i, want_o = pass_edges(passes, row_slots=slots,
                                              accept=edges["cmd"][0])
        assert edges["cmd"] == want_cmd
        assert edges["i"] == want_i
        assert edges["o"] == want_o


TINY_PASSES = {
    "1x1": conv_pass(in_h=5, in_w=6, groups=1, kernel=1, stride=1, out_h=5, out_w=6,
                     chunk_count=1),
    "1x1_s2_groups": conv_pass(in_h=5, in_w=6, groups=3, kernel=1, stride=2, out_h=3, out_w=3,
                               chunk_start=1, chunk_count=2),
    "2x2_s2_pad": conv_pass(in_h=7, in_w=5, groups=3, kernel=2, stride=2, pad_top=1,
                            pad_left=0, out_h=5, out_w=3, chunk_count=12),
    "3x3_same": conv_pass(in_h=6, in_w=7, groups=2, kernel=3, stride=1, pad_top=1, pad_left=1,
                          out_h=6, out_w=7, chunk_start=2, chunk_count=16),
    "3x3_s4_skip_rows": conv_pass(in_h=12, in_w=11, groups=1, kernel=3, stride=4, out_h=3,
                                  out_w=3, chunk_count=9),
    "5x5_s2": conv_pass(in_h=9, in_w=8, groups=1, kernel=5, stride=2, pad_top=2, pad_left=3,
                        out_h=5, out_w=5, chunk_start=3, chunk_count=16),
    "5x5_whole_window": conv_pass(in_h=6, in_w=6, groups=1, kernel=5, stride=1, pad_top=2,
                                  pad_left=2, out_h=3, out_w=4, chunk_count=25),
    "7x7_s3_groups": conv_pass(in_h=10, in_w=9, groups=2, kernel=7, stride=3, pad_top=3,
                               pad_left=1, out_h=3, out_w=3, chunk_start=40, chunk_count=16),
    "11x11_s4": conv_pass(in_h=15, in_w=13, groups=1, kernel=11, stride=4, pad_top=2,
                          pad_left=3, out_h=3, out_w=3, chunk_start=60, chunk_count=16),
    "setup_bound": conv_pass(in_h=3, in_w=1, groups=1, kernel=3, stride=1, pad_top=2,
                             out_h=3, out_w=1, chunk_start=6, chunk_count=3),
    "pool_3x3_s2": conv_pass(in_h=7, in_w=7, groups=1, kernel=3, stride=2, pad_top=1,
                             pad_left=1, out_h=4, out_w=4, chunk_count=9),
    # Rows -3..6 and columns -3..7 of a 4x5 tile: padding 3 on every side.
    "pad3_all_sides": conv_pass(in_h=4, in_w=5, groups=2, kernel=4, stride=1, pad_top=3,
                                pad_left=3, out_h=7, out_w=8, chunk_start=5, chunk_count=16),
    "max_row_words": conv_pass(in_h=3, in_w=64, groups=4, kernel=3, stride=1, pad_top=1,
                               pad_left=1, out_h=2, out_w=64, chunk_start=11, chunk_count=2),
    "max_width": conv_pass(in_h=2, in_w=256, groups=1, kernel=2, stride=2, out_h=1,
                           out_w=128, chunk_count=4),
}


@pytest.mark.parametrize("name", TINY_PASSES)
def test_tiny_pass(name):
    check(TINY, [TINY_PASSES[name]], seed=sum(map(ord, name)))


@pytest.mark.parametrize("name", ["3x3_same", "7x7_s3_groups", "11x11_s4", "2x2_s2_pad"])
def test_tiny_gaps_and_backpressure(name):
    check(TINY, [TINY_PASSES[name]], seed=7, gaps=0.3, stalls=0.4)


SPLIT_3X3 = [dataclasses.replace(TINY_PASSES["3x3_same"], chunk_start=start, chunk_count=count)
             for start, count in ((0, 16), (16, 2))]
SEQUENCES = {
    "mixed": [TINY_PASSES["5x5_s2"], TINY_PASSES["1x1_s2_groups"], TINY_PASSES["3x3_same"]],
    "split_window": SPLIT_3X3 + [TINY_PASSES["7x7_s3_groups"], TINY_PASSES["11x11_s4"],
                                 TINY_PASSES["1x1"]],
    "input_bound": [TINY_PASSES["3x3_s4_skip_rows"], TINY_PASSES["max_width"],
                    TINY_PASSES["setup_bound"], TINY_PASSES["pool_3x3_s2"]],
}


@pytest.mark.parametrize("row_slots", [None, TINY.max_kernel])
@pytest.mark.parametrize("name", SEQUENCES)
def test_passes_back_to_back(name, row_slots):
    """The next pass's rows stream in while the previous pass still emits its last rows."""
    check(TINY, SEQUENCES[name], seed=3, row_slots=row_slots)


@pytest.mark.parametrize("name", SEQUENCES)
def test_passes_gaps_and_backpressure(name):
    check(TINY, SEQUENCES[name], seed=4, gaps=0.3, stalls=0.3, row_slots=TINY.max_kernel)


def random_pass(rng) -> WindowPass:
    """A random legal tiny pass: kernel 1..11, stride 1..4, pads 0..min(3, K-1) (bottom and
    right padding from out_h / out_w up to 3 beyond the tile)."""
    kernel = int(rng.choice([1, 2, 3, 5, 7, 11]))
    stride = int(rng.integers(1, 5))
    groups = int(rng.integers(1, 4))
    pad_top, pad_left = (int(rng.integers(0, min(3, kernel - 1) + 1)) for _ in range(2))
    in_h, in_w = (int(rng.integers(max(1, kernel - 3), kernel + 6)) for _ in range(2))
    out_h, out_w = (max(1, (size + pad + 3 - kernel) // stride + 1)
                    for size, pad in ((in_h, pad_top), (in_w, pad_left)))
    window = kernel * kernel * groups
    count = int(rng.integers(1, min(window, TINY.contexts) + 1))
    start = int(rng.integers(0, window - count + 1))
    return WindowPass(in_h=in_h, in_w=in_w, groups=groups, kernel=kernel, stride=stride,
                      pad_top=pad_top, pad_left=pad_left, out_h=out_h, out_w=out_w,
                      chunk_start=start, chunk_count=count)


@pytest.mark.parametrize("seed", range(3))
def test_random_passes(seed):
    rng = np.random.default_rng(100 + seed)
    passes = [random_pass(rng) for _ in range(4)]
    check(TINY, passes, seed=seed, row_slots=int(rng.choice([TINY.max_kernel, 15])))
    check(TINY, passes, seed=seed, gaps=0.3, stalls=0.3, row_slots=TINY.max_kernel)


@pytest.mark.parametrize("name", ["11x11_s4", "3x3_same"])
def test_fewest_row_slots(name):
    """With only max_kernel rows the input waits for output rows to free slots."""
    check(TINY, [TINY_PASSES[name]], seed=5, row_slots=TINY.max_kernel)


def test_line_buffer_words_not_a_power_of_two():
    config = TINY.replace(name="tiny_rows100", line_buffer_words=100)
    check(config, [conv_pass(in_h=4, in_w=20, groups=5, kernel=3, stride=1, pad_top=1,
                             pad_left=2, out_h=3, out_w=19, chunk_start=20, chunk_count=7),
                   TINY_PASSES["7x7_s3_groups"]], seed=13)


def test_default_config():
    p = conv_pass(in_h=6, in_w=5, groups=2, kernel=3, stride=2, pad_top=1, pad_left=1,
                  out_h=3, out_w=3, chunk_start=2, chunk_count=16)
    check(DEFAULT, [p], seed=11)
    check(DEFAULT, [p], seed=12, gaps=0.3, stalls=0.3)


def test_illegal_cmd_is_an_empty_pass():
    """A kernel beyond max_kernel raises `error`, consumes and emits nothing; the next legal
    pass runs normally and clears `error`."""
    dut = WindowGenerator(config=TINY)
    good = TINY_PASSES["1x1_s2_groups"]
    bad = good.cmd() | {"kernel": TINY.max_kernel + 1}
    tile = np.random.default_rng(1).integers(-128, 128, (good.in_h, good.in_w, good.groups,
                                                          TINY.rows), dtype=np.int8)
    seen, flags = [], []

    async def bench(ctx):
        await put(ctx, dut.cmd, bad)
        for _ in range(3):
            flags.append((ctx.get(dut.error), ctx.get(dut.cmd.ready), ctx.get(dut.i.ready),
                          ctx.get(dut.o.valid)))
            await ctx.tick()
        await put(ctx, dut.cmd, good.cmd())
        flags.append(ctx.get(dut.error))

    async def inputs(ctx):
        await feed(ctx, dut.i, [pack(word) for word in tile.reshape(-1, TINY.rows)])

    async def outputs(ctx):
        seen.extend(await collect(ctx, dut.o, good.chunks, convert=lambda v: unpack(
            v.data, TINY.rows)))

    run_sim(dut, bench, inputs, outputs)
    # cmd.ready stays low until a cmd is offered (WindowGenerator.CMD_SETUP).
    assert flags == [(1, 0, 0, 0)] * 3 + [0]
    chunks, _ = window_chunks(tile, good)
    np.testing.assert_array_equal(np.array(seen), chunks.reshape(-1, TINY.rows))


@pytest.mark.parametrize("change, message", [
    ({"kernel": 12}, "kernel must be from 1 to max_kernel"),
    ({"stride": 0}, "stride must be from 1 to max_stride"),
    ({"stride": 5}, "stride must be from 1 to max_stride"),
    ({"in_w": 65, "groups": 4}, "exceeds line_buffer_words"),
    ({"pad_top": 3}, "pad_top must be from 0 to kernel - 1"),
    ({"chunk_start": 17}, "must lie in the 18 chunks"),
    ({"in_h": 0}, "in_h must be at least 1"),
    ({"in_w": 1024}, "in_w must be an integer from 0 to 1023"),
    ({"chunk_count": True}, "chunk_count must be an integer"),
    ({"kernel": 11, "chunk_count": 122}, "chunk_count must be at most 121"),
])
def test_pass_check_rejects(change, message):
    fields = conv_pass(in_h=4, in_w=4, groups=2, kernel=3, stride=1, out_h=2, out_w=2,
                       chunk_count=2).cmd() | change
    with pytest.raises(ValueError, match=message):
        WindowPass(**fields).check(TINY)


def test_of_instructions():
    conv = isa.Conv(in_h=6, in_w=7, in_groups=2, kernel=3, stride=1, pad_top=1, pad_left=1,
                    out_h=6, out_w=7, chunk_start=2, chunk_count=16)
    assert WindowPass.of_conv(conv) == TINY_PASSES["3x3_same"]
    pool = isa.Pool(kind=isa.PoolKind.MAX, in_h=7, in_w=7, groups=5, kernel=3, stride=2,
                    pad_top=1, pad_left=1, out_h=4, out_w=4)
    assert WindowPass.of_pool(pool) == TINY_PASSES["pool_3x3_s2"]
    with pytest.raises(ValueError, match="GLOBAL_AVG has no window"):
        WindowPass.of_pool(isa.Pool(kind=isa.PoolKind.GLOBAL_AVG, in_h=2, in_w=2, groups=1,
                                    out_h=1, out_w=1))
    with pytest.raises(ValueError, match="of_conv needs a CONV instruction"):
        WindowPass.of_conv(pool)


def test_constructor_rejects():
    with pytest.raises(ValueError, match="row_slots must be an integer of at least"):
        WindowGenerator(config=TINY, row_slots=TINY.max_kernel - 1)
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig"):
        WindowGenerator(config="tiny")


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
def test_lint(config):
    lint_verilog(to_verilog(WindowGenerator(config=config), "window_generator"),
                 "window_generator")
