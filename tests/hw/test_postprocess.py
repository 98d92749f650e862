# amaranth: UnusedElaboratable=no
"""PostProcess (hw/postprocess.py) against a NumPy model: random and extreme accumulators and
parameters, every activation, random tables, gaps and backpressure, exact latency and
throughput, and Verilator lint."""

import numpy as np
import pytest

from hw.arith import activate, requantize, unpack_params
from hw.config import preset
from hw.isa import Activation
from hw.lint import lint_verilog, to_verilog
from hw.postprocess import PostProcess
from tests.hw.pass_bench import pack_lanes, run_passes, time_passes, unpack_int8
from tests.streams import run_sim

EXTREME_SHIFTS = [0, 1, 31, 47, 48, 63]
EXTREME_MULTS = [-32768, 32767]
EXTREME_BIASES = [-(1 << 31), (1 << 31) - 1, 0]


def param_word(bias, mult, shift, rng) -> np.ndarray:
    """Parameter-buffer word bytes; the pad byte and the shift byte's top two bits are random
    (the hardware must ignore them)."""
    cols = len(bias)
    raw = np.zeros((cols, 8), np.uint8)
    raw[:, 0:4] = np.asarray(bias, "<i4").reshape(cols, 1).view(np.uint8)
    raw[:, 4:6] = np.asarray(mult, "<i2").reshape(cols, 1).view(np.uint8)
    raw[:, 6] = np.asarray(shift) | (rng.integers(0, 4, cols) << 6)
    raw[:, 7] = rng.integers(0, 256, cols)
    return raw.reshape(-1)


def model(acc: np.ndarray, word: np.ndarray, kind: Activation, lut: np.ndarray) -> np.ndarray:
    """Plain NumPy: act(clip(round_half_up((acc + bias) * mult / 2**shift), -128, 127))."""
    raw = word.reshape(-1, 8)
    bias = np.frombuffer(raw[:, 0:4].tobytes(), "<i4").astype(np.int64)
    mult = np.frombuffer(raw[:, 4:6].tobytes(), "<i2").astype(np.int64)
    shift = (raw[:, 6] & 63).astype(np.int64)
    t = (acc.astype(np.int64) + bias) * mult
    half = np.where(shift > 0, np.left_shift(1, np.maximum(shift - 1, 0)), 0)
    y = np.clip((t + half) >> shift, -128, 127)
    if kind is Activation.RELU:
        y = np.maximum(y, 0)
    elif kind is Activation.LUT:
        y = lut[y + 128]
    y = y.astype(np.int8)
    b, m, s = unpack_params(word)
    assert np.array_equal(y, activate(requantize(acc, b, m, s), kind, lut))
    return y


def random_pass(rng, config, count: int, kind: Activation) -> tuple[np.ndarray, np.ndarray]:
    """(parameter word, accumulators [count, columns]) mixing realistic and full-range values."""
    cols, half = config.columns, 1 << (config.acc_bits - 1)
    wild = rng.random(cols) < 0.3   # full-range parameters; else ones that keep y in range
    bias = np.where(wild, rng.integers(-(1 << 31), 1 << 31, cols), rng.integers(-5000, 5000, cols))
    mult = rng.integers(-32768, 32768, cols)
    shift = np.where(wild, rng.integers(0, 64, cols), rng.integers(26, 31, cols))
    pick = rng.random((count, cols))
    acc = np.select([pick < 0.7, pick < 0.85],
                    [rng.integers(-(1 << 20), 1 << 20, (count, cols)),
                     rng.choice([-half, half - 1, -1, 0, 1], (count, cols))],
                    rng.integers(-half, half, (count, cols)))
    return param_word(bias, mult, shift, rng), acc


def extreme_passes(rng, config) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every (bias, mult, shift) extreme combination on some column, each against the extreme
    accumulators."""
    cols, half = config.columns, 1 << (config.acc_bits - 1)
    combos = [(b, m, s) for b in EXTREME_BIASES for m in EXTREME_MULTS for s in EXTREME_SHIFTS]
    combos += combos[:-len(combos) % cols]
    acc_values = np.array([-half, half - 1, 0, -1, 1])
    acc = np.stack([np.roll(acc_values, k) for k in range(cols)], axis=1)
    passes = []
    for start in range(0, len(combos), cols):
        bias, mult, shift = map(np.array, zip(*combos[start:start + cols]))
        passes.append((param_word(bias, mult, shift, rng), acc))
    return passes


def cmd(word: np.ndarray, kind: Activation, count: int) -> dict:
    return {"params": {"pbuf_word": int.from_bytes(word.tobytes(), "little"),
                       "activation": kind}, "count": count}


def check_run(config, passes, kinds, *, gaps, stalls, seed):
    rng = np.random.default_rng(seed)
    lut = rng.integers(-128, 128, 256).astype(np.int8)
    dut = PostProcess(config=config)
    inputs = [pack_lanes(row, config.acc_bits) for _, acc in passes for row in acc]
    got = run_passes(dut, cmds=[cmd(w, k, len(a)) for (w, a), k in zip(passes, kinds)],
                     inputs=inputs, lanes=config.columns, lut=lut,
                     word_bytes=config.word_bytes, gaps=gaps, stalls=stalls, seed=seed)
    want = np.concatenate([model(a, w, k, lut) for (w, a), k in zip(passes, kinds)])
    assert np.array_equal(got, want)


@pytest.mark.parametrize("gaps,stalls", [(0.0, 0.0), (0.3, 0.3), (0.0, 0.5)])
def test_random_passes_tiny(gaps, stalls):
    config = preset("tiny")
    rng = np.random.default_rng(11)
    kinds = [Activation.NONE, Activation.RELU, Activation.LUT, Activation.NONE, Activation.LUT,
             Activation.RELU]
    # The empty pass is skipped.
    passes = [random_pass(rng, config, n, k) for n, k in zip([30, 1, 0, 17, 12, 8], kinds)]
    check_run(config, passes, kinds, gaps=gaps, stalls=stalls, seed=12)


def test_extremes_tiny():
    config = preset("tiny")
    rng = np.random.default_rng(21)
    passes = extreme_passes(rng, config)
    kinds = [list(Activation)[k % 3] for k in range(len(passes))]
    check_run(config, passes, kinds, gaps=0.2, stalls=0.2, seed=22)


def test_random_and_extremes_default():
    config = preset("default")
    rng = np.random.default_rng(31)
    passes = [random_pass(rng, config, 10, Activation.LUT)] + extreme_passes(rng, config)[:2]
    kinds = [Activation.LUT, Activation.RELU, Activation.NONE]
    check_run(config, passes, kinds, gaps=0.3, stalls=0.3, seed=32)


def timing_case(name: str, counts: list[int], ready_from: int = 0):
    config = preset(name)
    rng = np.random.default_rng(41)
    kinds = [Activation.RELU, Activation.NONE]
    passes = [random_pass(rng, config, n, k) for n, k in zip(counts, kinds)]
    inputs = [pack_lanes(row, config.acc_bits) for _, acc in passes for row in acc]
    accepted, delivered, outputs = time_passes(
        PostProcess(config=config), cmds=[cmd(w, k, len(a)) for (w, a), k in zip(passes, kinds)],
        inputs=inputs, ready_from=ready_from)
    want = np.concatenate([model(a, w, k, np.zeros(256, np.int8))
                           for (w, a), k in zip(passes, kinds)])
    assert np.array_equal([unpack_int8(v, config.columns) for v in outputs], want)
    return accepted, delivered


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_latency_and_throughput_across_passes(name):
    """A command reaches the datapath 2 cycles after its handshake; pixels then enter one per
    clock, also across the pass boundary, and leave exactly LATENCY = 10 cycles later."""
    assert PostProcess.LATENCY == 10
    accepted, delivered = timing_case(name, [7, 9])
    assert accepted == list(range(2, 2 + 16))
    assert delivered == [a + PostProcess.LATENCY for a in accepted]


def test_backpressure_admits_exactly_the_fifo_depth():
    """With o not ready, exactly LATENCY + 1 pixels enter (the FIFO holds them all); when o
    becomes ready at cycle 40 the outputs leave one per clock with no gap."""
    accepted, delivered = timing_case("tiny", [20, 5], ready_from=40)
    assert len([a for a in accepted if a < 40]) == PostProcess.LATENCY + 1
    assert delivered == list(range(40, 40 + 25))


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_postprocess_lints_clean(name):
    lint_verilog(to_verilog(PostProcess(config=preset(name)), "postprocess"), "postprocess")


def test_postprocess_rejects_a_non_config():
    with pytest.raises(TypeError, match="AcceleratorConfig"):
        PostProcess(config="tiny")


def test_lut_write_holds_pixels_until_the_table_is_written():
    """A LUT word accepted in cycle T keeps pixels out in cycles T+1 .. T+word_bytes."""
    config = preset("tiny")
    dut = PostProcess(config=config)
    rng = np.random.default_rng(91)
    word, acc = random_pass(rng, config, 40, Activation.LUT)
    accepted, lut_taken = [], []

    async def bench(ctx):
        ctx.set(dut.cmd.valid, 1)
        ctx.set(dut.cmd.payload, cmd(word, Activation.LUT, len(acc)))
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for cycle in range(60):
            ctx.set(dut.lut.valid, cycle == 10)
            ctx.set(dut.i.payload, pack_lanes(acc[len(accepted)], config.acc_bits))
            _, _, cmd_fire, i_fire, lut_fire = await ctx.tick().sample(
                dut.cmd.valid & dut.cmd.ready, dut.i.valid & dut.i.ready,
                dut.lut.valid & dut.lut.ready)
            if cmd_fire:
                ctx.set(dut.cmd.valid, 0)
            if i_fire:
                accepted.append(cycle)
            if lut_fire:
                lut_taken.append(cycle)
            if len(accepted) == len(acc):
                ctx.set(dut.i.valid, 0)
                break

    run_sim(dut, bench)
    held = range(11, 11 + config.word_bytes)
    assert lut_taken == [10]
    assert accepted == [c for c in range(2, 2 + len(acc) + len(held)) if c not in held]
