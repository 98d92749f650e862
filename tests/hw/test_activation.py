# amaranth: UnusedElaboratable=no
"""ActivationUnit (hw/activation.py) against a NumPy model: last rounding step, saturation and
every activation, with random tables, exact latency, and LUT write timing."""

import numpy as np
import pytest
from amaranth.back import verilog

from hw.activation import ActivationUnit
from hw.arith import activate, round_shift, saturate8
from hw.config import preset
from hw.isa import Activation
from hw.lint import lint_verilog
from tests.hw.pass_bench import load_lut, pack_lanes, unpack_int8
from tests.streams import run_sim

Q_BITS = 50


def model(q: np.ndarray, kind: Activation, lut: np.ndarray) -> np.ndarray:
    """Plain NumPy: y = act(clip((q + 1) >> 1, -128, 127))."""
    y = np.clip((q.astype(np.int64) + 1) >> 1, -128, 127)
    if kind is Activation.RELU:
        y = np.maximum(y, 0)
    elif kind is Activation.LUT:
        y = lut[y + 128]
    return y.astype(np.int8)


def random_q(rng, count: int, lanes: int) -> np.ndarray:
    """Values around the clamp edges, small values, and the full 50-bit range."""
    edges = np.array([-(1 << (Q_BITS - 1)), (1 << (Q_BITS - 1)) - 1, -259, -258, -257, -256,
                      -255, -2, -1, 0, 1, 2, 252, 253, 254, 255, 256, 257])
    pick = rng.integers(0, 3, (count, lanes))
    return np.select([pick == 0, pick == 1],
                     [rng.choice(edges, (count, lanes)), rng.integers(-300, 300, (count, lanes))],
                     rng.integers(-(1 << (Q_BITS - 1)), 1 << (Q_BITS - 1), (count, lanes)))


@pytest.mark.parametrize("name,count,gaps", [("tiny", 200, 0.0), ("tiny", 200, 0.4),
                                             ("default", 40, 0.3)])
def test_activation_matches_model_with_exact_latency(name, count, gaps):
    config = preset(name)
    lanes = config.columns
    rng = np.random.default_rng(7)
    lut = rng.integers(-128, 128, 256).astype(np.int8)
    q = random_q(rng, count, lanes)
    kinds = rng.choice(list(Activation), count)
    dut = ActivationUnit(lanes=lanes, q_bits=Q_BITS, lut_word_bytes=config.word_bytes)
    sent_at, got_at, got = [], [], []

    async def bench(ctx):
        await load_lut(ctx, dut.lut, lut, config.word_bytes)
        sent, cycle = 0, 0
        while len(got) < count:
            offer = sent < count and rng.random() >= gaps
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, {"q": pack_lanes(q[sent], Q_BITS),
                                        "activation": kinds[sent]})
                sent_at.append(cycle)
                sent += 1
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                got_at.append(cycle)
                got.append(unpack_int8(payload, lanes))
            cycle += 1

    run_sim(dut, bench)
    assert np.array_equal(np.array(got_at) - np.array(sent_at),
                          np.full(count, ActivationUnit.LATENCY))
    for k in range(count):
        want = model(q[k], kinds[k], lut)
        assert np.array_equal(got[k], want), (k, q[k], kinds[k], got[k], want)


def test_model_equals_arith_round_shift():
    """(q + 1) >> 1 with q = (2x) >> s is round_shift(x, s) for every shift 0..63."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.integers(-(1 << 47), (1 << 47) + 1, 2000),
                        [-(1 << 47), 1 << 47, -1, 0, 1]])
    lut = rng.integers(-128, 128, 256).astype(np.int8)
    for shift in range(64):
        q = (x << 1) >> shift
        for kind in Activation:
            assert np.array_equal(model(q, kind, lut),
                                  activate(saturate8(round_shift(x, shift)), kind, lut)), shift


def test_lut_write_takes_one_cycle_per_entry_and_is_visible_at_ready():
    config = preset("tiny")
    wb = config.word_bytes
    dut = ActivationUnit(lanes=config.columns, q_bits=Q_BITS, lut_word_bytes=wb)
    lut = np.random.default_rng(5).integers(-128, 128, 256).astype(np.int8)
    ready_trace, got = [], []

    async def bench(ctx):
        ctx.set(dut.lut.valid, 1)
        ctx.set(dut.lut.payload, {"addr": 63, "data": pack_lanes(lut[252:256], 8)})
        await ctx.tick()
        ctx.set(dut.lut.valid, 0)
        for _ in range(wb + 1):
            ready_trace.append(ctx.get(dut.lut.ready))
            if ctx.get(dut.lut.ready):
                break
            await ctx.tick()
        # The first cycle with ready high may already look up the new entries (y = 124..127).
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, {"q": pack_lanes([248, 250, 252, 254], Q_BITS),
                                "activation": Activation.LUT})
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        (payload,) = await ctx.tick().sample(dut.o.payload).until(dut.o.valid)
        got.append(unpack_int8(payload, config.columns))

    run_sim(dut, bench)
    assert ready_trace == [0] * wb + [1]
    assert np.array_equal(got[0], lut[252:256])


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_activation_lints_clean(name):
    config = preset(name)
    dut = ActivationUnit(lanes=config.columns, q_bits=Q_BITS, lut_word_bytes=config.word_bytes)
    # The always-ready streams' `ready` is a constant, which cannot be a Verilog port: name the
    # ports explicitly.
    ports = [dut.i.payload.as_value(), dut.i.valid, dut.o.payload, dut.o.valid,
             dut.lut.payload.as_value(), dut.lut.valid, dut.lut.ready]
    lint_verilog(verilog.convert(dut, name="activation", ports=ports, emit_src=False),
                 "activation")


@pytest.mark.parametrize("kwargs,match", [
    ({"lanes": 0, "q_bits": 50, "lut_word_bytes": 4}, "lanes"),
    ({"lanes": 4, "q_bits": 9, "lut_word_bytes": 4}, "q_bits"),
    ({"lanes": 4, "q_bits": 50, "lut_word_bytes": 3}, "lut_word_bytes"),
])
def test_activation_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ActivationUnit(**kwargs)
