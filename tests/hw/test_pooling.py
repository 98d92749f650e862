# amaranth: UnusedElaboratable=no
"""PoolingUnit against a NumPy model of max / average / global average pooling with
requantization; alone on random windows and behind a WindowGenerator."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Const, Module, Signal

from hw.config import preset
from hw.isa import PoolKind
from hw.lint import lint_verilog, to_verilog
from hw.pooling import PoolingUnit, pool_product_shape
from hw.window import WindowGenerator, WindowPass
from tests.hw.window.model import (pack, pass_edges, transfer_monitor, unpack,
                                   window_chunks)
from tests.streams import collect, feed, put, run_sim

TINY = preset("tiny")
DEFAULT = preset("default")
LATENCY = PoolingUnit.LATENCY  # edges from a window's last tap to its word on `o`


def requantize(r: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """saturate8(floor((r*mult + 2**(shift-1)) / 2**shift)) in Python integers."""
    out = []
    for value in r.reshape(-1).tolist():
        product = value * mult
        rounded = (product + (1 << shift >> 1)) >> shift
        out.append(min(127, max(-128, rounded)))
    return np.array(out, np.int8).reshape(r.shape)


def pool_model(taps: np.ndarray, inside: np.ndarray, kind: PoolKind, mult: int, shift: int
               ) -> np.ndarray:
    """One output word [lanes] of a window of taps [n, lanes] with inside flags [n]."""
    taps = taps.astype(np.int64)
    if kind is PoolKind.MAX:
        r = np.where(inside[:, None], taps, -128).max(axis=0)
    else:
        r = np.where(inside[:, None], taps, 0).sum(axis=0)
    return requantize(r, mult, shift)


def random_pass(rng, lanes, kind, windows):
    """(cmd, [(taps, inside)] per window): random window sizes, some all outside."""
    cmd = {"kind": kind, "mult": int(rng.choice([-32768, 32767, rng.integers(-32768, 32768)])),
           "shift": int(rng.choice([0, 63, rng.integers(0, 24)]))}
    result = []
    for n in range(windows):
        size = int(rng.integers(1, 26)) if kind is not PoolKind.GLOBAL_AVG else 300
        taps = rng.integers(-128, 128, (size, lanes), dtype=np.int8)
        inside = (rng.random(size) < 0.7) if kind is not PoolKind.GLOBAL_AVG \
            else np.ones(size, bool)
        if n == 0 and kind is not PoolKind.GLOBAL_AVG:
            inside[:] = False
        if n == 1:
            taps[:] = 127 if kind is PoolKind.MAX else -128
        result.append((taps, inside))
    return cmd, result


def run_pool(config, passes, *, gaps=0.0, stalls=0.0, seed=0):
    """Run the passes; returns (output words, edges of cmd accepts, taps and outputs)."""
    dut = PoolingUnit(config=config)
    taps = []
    for _, windows in passes:
        for w, (values, inside) in enumerate(windows):
            for t in range(len(values)):
                taps.append({"data": pack(values[t]), "inside": int(inside[t]),
                             "last": int(t == len(values) - 1),
                             "end": int(w == len(windows) - 1 and t == len(values) - 1)})
    total = sum(len(windows) for _, windows in passes)
    seen, edges = [], {"cmd": [], "i": [], "o": []}

    async def commands(ctx):
        for cmd, _ in passes:
            await put(ctx, dut.cmd, cmd)

    async def inputs(ctx):
        await feed(ctx, dut.i, taps, gaps=gaps, seed=seed)

    async def outputs(ctx):
        seen.extend(await collect(ctx, dut.o, total, stalls=stalls, seed=seed + 1,
                                  convert=lambda v: unpack(v, config.rows)))

    ports = {name: getattr(dut, name) for name in edges}
    run_sim(dut, commands, inputs, outputs, processes=[transfer_monitor(ports, edges)])
    return seen, edges, taps


def check_pool(config, passes, *, gaps=0.0, stalls=0.0, seed=0):
    seen, edges, taps = run_pool(config, passes, gaps=gaps, stalls=stalls, seed=seed)
    want = [pool_model(values, inside, cmd["kind"], cmd["mult"], cmd["shift"])
            for cmd, windows in passes for values, inside in windows]
    np.testing.assert_array_equal(np.array(seen), np.array(want))
    if gaps == 0 and stalls == 0:
        # The first tap goes in one edge after its cmd, then one tap per edge; the next cmd one
        # edge after the pass's `end` tap; each window's word LATENCY edges after its last tap.
        want_i, want_cmd, edge = [], [], edges["cmd"][0]
        for _, windows in passes:
            want_cmd.append(edge)
            count = sum(len(values) for values, _ in windows)
            want_i += list(range(edge + 1, edge + 1 + count))
            edge += count + 1
        assert edges["cmd"] == want_cmd
        assert edges["i"] == want_i
        lasts = [e for e, tap in zip(edges["i"], taps) if tap["last"]]
        assert edges["o"] == [e + LATENCY for e in lasts]


@pytest.mark.parametrize("kind", [PoolKind.MAX, PoolKind.AVG])
def test_windows(kind):
    rng = np.random.default_rng(kind.value)
    check_pool(TINY, [random_pass(rng, TINY.rows, kind, 12)])


def test_global_average():
    rng = np.random.default_rng(2)
    check_pool(TINY, [random_pass(rng, TINY.rows, PoolKind.GLOBAL_AVG, 2)])


@pytest.mark.parametrize("value", [-128, 127])
def test_global_average_of_the_largest_plane(value):
    """A plane of ibuf_words pixels at either extreme: the sum needs every bit of the
    19-bit accumulator (2048 * -128 = -2**18 on tiny)."""
    plane = np.full((TINY.ibuf_words, TINY.rows), value, np.int8)
    check_pool(TINY, [({"kind": PoolKind.GLOBAL_AVG, "mult": 1, "shift": 11},
                       [(plane, np.ones(len(plane), bool))])])


def test_single_tap_windows_one_per_cycle():
    rng = np.random.default_rng(3)
    windows = [(rng.integers(-128, 128, (1, TINY.rows), dtype=np.int8), np.ones(1, bool))
               for _ in range(20)]
    check_pool(TINY, [({"kind": PoolKind.AVG, "mult": 3, "shift": 1}, windows)])


def test_passes_gaps_and_backpressure():
    rng = np.random.default_rng(4)
    passes = [random_pass(rng, TINY.rows, kind, 6)
              for kind in (PoolKind.MAX, PoolKind.AVG, PoolKind.MAX)]
    check_pool(TINY, passes)
    check_pool(TINY, passes, gaps=0.3, stalls=0.4, seed=5)


def test_default_config():
    rng = np.random.default_rng(6)
    passes = [random_pass(rng, DEFAULT.rows, PoolKind.MAX, 4),
              random_pass(rng, DEFAULT.rows, PoolKind.AVG, 4)]
    check_pool(DEFAULT, passes, gaps=0.2, stalls=0.2, seed=7)


@pytest.mark.parametrize("kind, kernel, stride, pad", [
    (PoolKind.MAX, 3, 2, 1), (PoolKind.AVG, 2, 2, 0), (PoolKind.MAX, 11, 4, 3)])
@pytest.mark.parametrize("stalls", [0.0, 0.3])
def test_behind_window_generator(kind, kernel, stride, pad, stalls):
    """A POOL plane: generator (groups=1, chunks [0, K*K)) straight into the pooling unit."""
    rng = np.random.default_rng(kernel)
    in_side = 9 if kernel < 11 else 14
    out_side = (in_side + 2 * pad - kernel) // stride + 1
    p = WindowPass(in_h=in_side, in_w=in_side - 1, groups=1, kernel=kernel, stride=stride,
                   pad_top=pad, pad_left=pad, out_h=out_side, out_w=out_side - 1,
                   chunk_start=0, chunk_count=kernel * kernel)
    p.check(TINY)
    cmd = {"kind": kind, "mult": int(rng.integers(1, 1 << 12)), "shift": int(rng.integers(4, 12))}
    plane = rng.integers(-128, 128, (p.in_h, p.in_w, 1, TINY.rows), dtype=np.int8)

    m = Module()
    m.submodules.gen = gen = WindowGenerator(config=TINY)
    m.submodules.pool = pool = PoolingUnit(config=TINY)
    m.d.comb += [
        pool.i.valid.eq(gen.o.valid), gen.o.ready.eq(pool.i.ready),
        pool.i.payload.data.eq(gen.o.payload.data), pool.i.payload.inside.eq(
            gen.o.payload.inside),
        pool.i.payload.last.eq(gen.o.payload.last), pool.i.payload.end.eq(gen.o.payload.end),
    ]
    seen = []
    edges = {"cmd": [], "gen_o": [], "pool_o": []}
    ports = {"cmd": gen.cmd, "gen_o": gen.o, "pool_o": pool.o}

    async def commands(ctx):
        await put(ctx, pool.cmd, cmd)
        await put(ctx, gen.cmd, p.cmd())

    async def inputs(ctx):
        await feed(ctx, gen.i, [pack(plane[y, x, 0]) for y in range(p.in_h)
                                for x in range(p.in_w)])

    async def outputs(ctx):
        seen.extend(await collect(ctx, pool.o, p.out_h * p.out_w, stalls=stalls, seed=8,
                                  convert=lambda v: unpack(v, TINY.rows)))

    run_sim(m, commands, inputs, outputs, processes=[transfer_monitor(ports, edges)])
    chunks, inside = window_chunks(plane, p)
    want = [pool_model(chunks[n], inside[n], kind, cmd["mult"], cmd["shift"])
            for n in range(len(chunks))]
    np.testing.assert_array_equal(np.array(seen), np.array(want))
    if stalls == 0:
        # Window of pixel n leaves the pool LATENCY edges after its last chunk leaves the
        # generator, which the generator's timing model gives.
        _, _, gen_out = pass_edges([p], row_slots=gen.row_slots, accept=edges["cmd"][0])
        assert edges["gen_o"] == gen_out
        lasts = gen_out[p.chunk_count - 1::p.chunk_count]
        assert edges["pool_o"] == [e + LATENCY for e in lasts]


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
def test_lint(config):
    lint_verilog(to_verilog(PoolingUnit(config=config), "pooling_unit"), "pooling_unit")


def test_rejects_config():
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig"):
        PoolingUnit(config=4)


def test_round_shift_saturate_extremes():
    """The requantizer alone on products up to its full width and every shift 0..63 (its
    result follows the product and shift one edge later)."""
    from amaranth.sim import Simulator

    from hw.pooling import _round_shift_saturate

    m = Module()
    product = Signal(pool_product_shape(TINY))
    shift = Signal(6)
    result = _round_shift_saturate(m, Const(1), product, shift)
    rng = np.random.default_rng(9)
    bound = 1 << (pool_product_shape(TINY).width - 1)
    values = [-bound, bound - 1, -1, 0, 1, 127, 128, -128, -129] + \
        [int(v) for v in rng.integers(-bound, bound, 40)]
    mismatches = []

    async def bench(ctx):
        for value in values:
            for amount in range(64):
                ctx.set(product, value)
                ctx.set(shift, amount)
                await ctx.tick()
                want = int(requantize(np.array([value]), 1, amount)[0])
                if ctx.get(result) != want:
                    mismatches.append((value, amount, ctx.get(result), want))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert mismatches == []
