# amaranth: UnusedElaboratable=no
"""EltwiseAdd (hw/eltwise.py) against a NumPy model: random and extreme lanes and parameters,
every activation, random tables, gaps and backpressure, exact latency and throughput, and
Verilator lint."""

import re

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hw.arith import activate, round_shift, saturate8
from hw.config import preset
from hw.eltwise import EltwiseAdd
from hw.isa import Activation
from hw.lint import lint_verilog, to_verilog
from tests.hw.pass_bench import pack_lanes, run_passes, time_passes, unpack_int8

EXTREME_LANES = [-128, 127, 0, -1, 1]
EXTREME_MULTS = [-32768, 32767, 1]
EXTREME_SHIFTS = [0, 1, 24, 25, 31, 63]


def model(a: np.ndarray, b: np.ndarray, params: dict, lut: np.ndarray) -> np.ndarray:
    """Plain NumPy: act(clip(round_half_up((a*mult_a + b*mult_b) / 2**shift), -128, 127))."""
    shift, kind = params["shift"], params["activation"]
    x = a.astype(np.int64) * params["mult_a"] + b.astype(np.int64) * params["mult_b"]
    half = (1 << (shift - 1)) if shift else 0
    y = np.clip((x + half) >> shift, -128, 127)
    if kind is Activation.RELU:
        y = np.maximum(y, 0)
    elif kind is Activation.LUT:
        y = lut[y + 128]
    y = y.astype(np.int8)
    assert np.array_equal(y, activate(saturate8(round_shift(x, shift)), kind, lut))
    return y


def random_params(rng, kind: Activation) -> dict:
    wild = rng.random() < 0.3   # any shift; else shifts that keep most results in range
    return {"mult_a": int(rng.integers(-32768, 32768)), "mult_b": int(rng.integers(-32768, 32768)),
            "shift": int(rng.integers(0, 64) if wild else rng.integers(15, 18)),
            "activation": kind}


def pairs(rng, lanes: int, count: int, extreme: bool) -> tuple[np.ndarray, np.ndarray]:
    if extreme:
        return (rng.choice(EXTREME_LANES, (count, lanes)),
                rng.choice(EXTREME_LANES, (count, lanes)))
    return rng.integers(-128, 128, (2, count, lanes))


def check_run(config, cmds, a, b, *, gaps, stalls, seed):
    """Run commands (params, count) over word pairs a, b [words, lanes] and compare."""
    rng = np.random.default_rng(seed)
    lut = rng.integers(-128, 128, 256).astype(np.int8)
    lanes = config.lanes
    inputs = [pack_lanes(np.concatenate([x, y]), 8) for x, y in zip(a, b)]
    got = run_passes(EltwiseAdd(config=config),
                     cmds=[{"params": p, "count": n} for p, n in cmds], inputs=inputs,
                     lanes=lanes, lut=lut, word_bytes=config.word_bytes, gaps=gaps,
                     stalls=stalls, seed=seed)
    bounds = np.cumsum([0] + [n for _, n in cmds])
    want = np.concatenate([model(a[s:e], b[s:e], p, lut)
                           for (p, _), s, e in zip(cmds, bounds, bounds[1:])])
    assert np.array_equal(got, want)


@pytest.mark.parametrize("gaps,stalls", [(0.0, 0.0), (0.3, 0.3), (0.0, 0.5)])
def test_random_adds_tiny(gaps, stalls):
    config = preset("tiny")
    rng = np.random.default_rng(51)
    kinds = [Activation.NONE, Activation.RELU, Activation.LUT, Activation.LUT, Activation.RELU]
    cmds = [(random_params(rng, k), n) for k, n in zip(kinds, [25, 1, 16, 12, 6])]
    a, b = pairs(rng, config.lanes, 60, extreme=False)
    check_run(config, cmds, a, b, gaps=gaps, stalls=stalls, seed=52)


def test_extremes_tiny():
    config = preset("tiny")
    rng = np.random.default_rng(61)
    combos = [(ma, mb, s) for ma in EXTREME_MULTS for mb in EXTREME_MULTS
              for s in EXTREME_SHIFTS]
    cmds = [({"mult_a": ma, "mult_b": mb, "shift": s, "activation": list(Activation)[k % 3]}, 2)
            for k, (ma, mb, s) in enumerate(combos)]
    a, b = pairs(rng, config.lanes, 2 * len(cmds), extreme=True)
    check_run(config, cmds, a, b, gaps=0.2, stalls=0.2, seed=62)


def test_random_and_extremes_default():
    config = preset("default")
    rng = np.random.default_rng(71)
    cmds = [(random_params(rng, Activation.LUT), 8),
            ({"mult_a": -32768, "mult_b": 32767, "shift": 0, "activation": Activation.RELU}, 3),
            ({"mult_a": 32767, "mult_b": -32768, "shift": 63, "activation": Activation.NONE}, 2),
            ({"mult_a": -32768, "mult_b": -32768, "shift": 24, "activation": Activation.NONE}, 3)]
    ra, rb = pairs(rng, config.lanes, 8, extreme=False)
    ea, eb = pairs(rng, config.lanes, 8, extreme=True)
    check_run(config, cmds, np.concatenate([ra, ea]), np.concatenate([rb, eb]), gaps=0.3,
              stalls=0.3, seed=72)


def timing_case(name: str, counts: list[int], ready_from: int = 0):
    config = preset(name)
    rng = np.random.default_rng(81)
    params = [random_params(rng, k) for k in (Activation.RELU, Activation.NONE)]
    a, b = pairs(rng, config.lanes, sum(counts), extreme=False)
    inputs = [pack_lanes(np.concatenate([x, y]), 8) for x, y in zip(a, b)]
    accepted, delivered, outputs = time_passes(
        EltwiseAdd(config=config), cmds=[{"params": p, "count": n} for p, n in zip(params, counts)],
        inputs=inputs, ready_from=ready_from)
    lut = np.zeros(256, np.int8)
    want = np.concatenate([model(a[:counts[0]], b[:counts[0]], params[0], lut),
                           model(a[counts[0]:], b[counts[0]:], params[1], lut)])
    assert np.array_equal([unpack_int8(v, config.lanes) for v in outputs], want)
    return accepted, delivered


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_latency_and_throughput_across_commands(name):
    """A command reaches the datapath 2 cycles after its handshake; words then enter one per
    clock, also across the command boundary, and leave exactly LATENCY = 9 cycles later."""
    assert EltwiseAdd.LATENCY == 9
    accepted, delivered = timing_case(name, [6, 10])
    assert accepted == list(range(2, 2 + 16))
    assert delivered == [a + EltwiseAdd.LATENCY for a in accepted]


def test_backpressure_admits_exactly_the_fifo_depth():
    """With o not ready, exactly LATENCY + 1 words enter; when o becomes ready at cycle 40
    the outputs leave one per clock with no gap."""
    accepted, delivered = timing_case("tiny", [15, 10], ready_from=40)
    assert len([a for a in accepted if a < 40]) == EltwiseAdd.LATENCY + 1
    assert delivered == list(range(40, 40 + 25))


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_eltwise_lints_clean(name):
    lint_verilog(to_verilog(EltwiseAdd(config=preset(name)), "eltwise"), "eltwise")


def test_ecp5_products_use_the_dsp_registers():
    """Elaborated for an ECP5 board, each lane's two products are MULT18X18Ds with their own
    input and output registers (the operand and product stages); with no platform the generic
    registers the simulations above check."""
    config = preset("tiny")
    text = rtlil.convert(EltwiseAdd(config=config), platform=ULX3S_85F_Platform(),
                         emit_src=False)
    assert text.count("cell \\MULT18X18D ") == 2 * config.lanes
    for reg in ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"):
        assert len(re.findall(rf'parameter \\{reg} "CLK0"', text)) == 2 * config.lanes, reg
    assert "MULT18X18D" not in rtlil.convert(EltwiseAdd(config=config), emit_src=False)


def test_eltwise_rejects_a_non_config():
    with pytest.raises(TypeError, match="AcceleratorConfig"):
        EltwiseAdd(config="tiny")
