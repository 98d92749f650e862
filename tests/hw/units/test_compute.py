# amaranth: UnusedElaboratable=no
"""The compute unit against the functional model: same instructions, same buffers."""

import numpy as np
import pytest

from hw import isa
from hw.arith import pack_params
from hw.config import preset
from hw.isa import Activation, Buffer, PoolKind
from hw.lint import lint_verilog, to_verilog
from hw.units.compute import ComputeUnit
from sim.functional import FunctionalMachine
from tests.streams import put, run_sim

from .compute_harness import ComputeHarness, unpack_words


def random_machine(config, rng):
    fm = FunctionalMachine(config)
    b = fm.buffers
    b[Buffer.IBUF][:] = rng.integers(-128, 128, b[Buffer.IBUF].shape)
    b[Buffer.WBUF][:] = rng.integers(-128, 128, b[Buffer.WBUF].shape)
    b[Buffer.LUT][:] = rng.integers(-128, 128, b[Buffer.LUT].shape)
    channels = config.pbuf_words * config.columns
    params = pack_params(rng.integers(-3000, 3000, channels),
                         rng.integers(1 << 14, 1 << 15, channels),
                         rng.integers(12, 18, channels))
    b[Buffer.PBUF][:] = np.frombuffer(params, np.uint8).reshape(b[Buffer.PBUF].shape)
    return fm


def conv_passes(config, rng, *, in_h, in_w, groups, kernel, stride, pads, acc_addr, obuf_addr,
                wbuf_addr=0, activation=Activation.RELU):
    """A CONV reduction split into passes of at most `contexts` chunks."""
    top, left, bottom, right = pads
    out_h = (in_h + top + bottom - kernel) // stride + 1
    out_w = (in_w + left + right - kernel) // stride + 1
    total = kernel * kernel * groups
    passes = []
    for start in range(0, total, config.contexts):
        count = min(config.contexts, total - start)
        last = start + count == total
        passes.append(isa.Conv(
            accumulate=int(start > 0), output=int(last),
            activation=activation if last else Activation.NONE,
            ibuf_addr=int(rng.integers(0, 40)), in_h=in_h, in_w=in_w, in_groups=groups,
            kernel=kernel, stride=stride, pad_top=top, pad_left=left, out_h=out_h,
            out_w=out_w, chunk_start=start, chunk_count=count,
            wbuf_addr=wbuf_addr + (len(passes) % 2) * config.contexts * config.columns,
            acc_addr=acc_addr, obuf_addr=obuf_addr, pbuf_addr=int(rng.integers(0, 4))))
    return passes


def run_compute(config, fm, program, lut_words):
    dut = ComputeHarness(config, fm.buffers)
    result = {}

    async def tb(ctx):
        for addr, word in enumerate(lut_words):
            await put(ctx, dut.lut, {"addr": addr, "data": word})
        done = 0
        pending = list(program)
        cycles = 0
        while done < len(program):
            if pending:
                ctx.set(dut.instr.valid, 1)
                ctx.set(dut.instr.payload, isa.encode(pending[0]))
            _, _, ready, strobe = await ctx.tick().sample(dut.instr.ready, dut.done)
            cycles += 1
            if pending and ready:
                pending.pop(0)
                if not pending:
                    ctx.set(dut.instr.valid, 0)
            done += strobe
            assert cycles < 200_000, "compute unit hung"
        result["obuf"] = [ctx.get(dut.obuf.data[a]) for a in range(config.obuf_words)]

    run_sim(dut, tb)
    return unpack_words(result["obuf"], config.word_bytes)


def check_against_model(config, fm, program):
    lut_words = [int.from_bytes(w.tobytes(), "little") for w in fm.buffers[Buffer.LUT]]
    got = run_compute(config, fm, program, lut_words)
    for instr in program:
        fm.execute(instr)
    np.testing.assert_array_equal(got, fm.buffers[Buffer.OBUF])


@pytest.mark.parametrize("seed,shape", [
    (1, dict(in_h=5, in_w=6, groups=1, kernel=3, stride=1, pads=(1, 1, 1, 1))),
    (2, dict(in_h=7, in_w=5, groups=3, kernel=3, stride=2, pads=(1, 0, 0, 1))),
    (3, dict(in_h=4, in_w=4, groups=2, kernel=1, stride=1, pads=(0, 0, 0, 0))),
    (4, dict(in_h=9, in_w=9, groups=1, kernel=5, stride=2, pads=(2, 2, 2, 2))),
    (5, dict(in_h=3, in_w=3, groups=5, kernel=3, stride=1, pads=(0, 0, 0, 0))),
])
def test_conv_reductions_match_functional_model(seed, shape):
    config = preset("tiny")
    rng = np.random.default_rng(seed)
    fm = random_machine(config, rng)
    act = [Activation.NONE, Activation.RELU, Activation.LUT][seed % 3]
    program = conv_passes(config, rng, acc_addr=3, obuf_addr=10, activation=act, **shape)
    check_against_model(config, fm, program)


def test_back_to_back_convs_of_different_shapes():
    config = preset("tiny")
    rng = np.random.default_rng(9)
    fm = random_machine(config, rng)
    program = (conv_passes(config, rng, in_h=4, in_w=5, groups=1, kernel=3, stride=1,
                           pads=(1, 1, 1, 1), acc_addr=0, obuf_addr=0)
               + conv_passes(config, rng, in_h=6, in_w=3, groups=2, kernel=2, stride=2,
                             pads=(0, 0, 0, 0), acc_addr=100, obuf_addr=200)
               + conv_passes(config, rng, in_h=2, in_w=2, groups=20, kernel=1, stride=1,
                             pads=(0, 0, 0, 0), acc_addr=300, obuf_addr=300))
    check_against_model(config, fm, program)


@pytest.mark.parametrize("kind,kernel,stride,pads", [
    (PoolKind.MAX, 2, 2, (0, 0)), (PoolKind.MAX, 3, 2, (1, 1)), (PoolKind.AVG, 3, 3, (0, 0)),
    (PoolKind.GLOBAL_AVG, 0, 0, (0, 0)),
])
def test_pool_matches_functional_model(kind, kernel, stride, pads):
    config = preset("tiny")
    rng = np.random.default_rng(kernel * 7 + stride)
    fm = random_machine(config, rng)
    in_h, in_w, groups = 7, 6, 3
    if kind is PoolKind.GLOBAL_AVG:
        out_h = out_w = 1
    else:
        out_h = (in_h + pads[0] - kernel) // stride + 1
        out_w = (in_w + pads[1] - kernel) // stride + 1
    program = [isa.Pool(kind=kind, ibuf_addr=5, in_h=in_h, in_w=in_w, groups=groups,
                        kernel=kernel, stride=stride, pad_top=pads[0], pad_left=pads[1],
                        out_h=out_h, out_w=out_w, obuf_addr=17,
                        mult=1 if kind is PoolKind.MAX else 7282,
                        shift=0 if kind is PoolKind.MAX else 16)]
    check_against_model(config, fm, program)


@pytest.mark.parametrize("kind", [PoolKind.MAX, PoolKind.GLOBAL_AVG])
def test_pool_with_many_channel_groups(kind):
    """More than 32 groups: the output count is formed from two partial products, by the low
    and the high five bits of `groups`."""
    config = preset("tiny")
    fm = random_machine(config, np.random.default_rng(37))
    window = kind is PoolKind.MAX
    program = [isa.Pool(kind=kind, ibuf_addr=3, in_h=2, in_w=3, groups=37,
                        kernel=2 if window else 0, stride=1 if window else 0, pad_top=0,
                        pad_left=0, out_h=1, out_w=2 if window else 1, obuf_addr=11,
                        mult=1 if window else 10923, shift=0 if window else 16)]
    check_against_model(config, fm, program)


def test_add_then_conv_then_pool_switch_modes():
    config = preset("tiny")
    rng = np.random.default_rng(21)
    fm = random_machine(config, rng)
    program = [isa.Add(a_addr=0, b_addr=50, count=23, obuf_addr=400, mult_a=300, mult_b=-200,
                       shift=8, activation=Activation.LUT)]
    program += conv_passes(config, rng, in_h=3, in_w=4, groups=1, kernel=3, stride=1,
                           pads=(1, 1, 1, 1), acc_addr=0, obuf_addr=0)
    program += [isa.Pool(kind=PoolKind.MAX, ibuf_addr=8, in_h=4, in_w=4, groups=2, kernel=2,
                         stride=2, out_h=2, out_w=2, obuf_addr=500, mult=1, shift=0),
                isa.Add(a_addr=7, b_addr=9, count=5, obuf_addr=600, mult_a=1, mult_b=1,
                        shift=0, activation=Activation.RELU)]
    check_against_model(config, fm, program)


@pytest.mark.parametrize("cfg", ["tiny", "default"])
def test_verilog_is_lint_clean(cfg):
    lint_verilog(to_verilog(ComputeUnit(config=preset(cfg)), "compute"), "compute")
