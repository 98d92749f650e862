# amaranth: UnusedElaboratable=no
"""ColumnAdder: per-pixel totals over any number of chunks, bubbles and stalls, wrapping."""

import numpy as np
import pytest

from hw.arith import wrap_acc
from hw.systolic.column_adder import ColumnAdder
from tests.streams import run_sim


@pytest.mark.parametrize("columns,psum_bits,acc_bits", [(1, 16, 32), (4, 18, 32), (3, 22, 20)])
def test_sums_the_chunks_of_each_pixel(columns, psum_bits, acc_bits):
    # psum_bits 22 > acc_bits 20 (a 64-row array with a 20-bit accumulator): the sums wrap.
    rng = np.random.default_rng(columns + psum_bits)
    half = 1 << (psum_bits - 1)
    count = 120
    psums = rng.integers(-half, half, (count, columns))
    valid = rng.random(count) >= 0.3
    last = rng.random(count) < 0.35
    en = rng.random(count) >= 0.25
    expected, running = [], np.zeros(columns, dtype=np.int64)
    for n in range(count):
        if en[n] and valid[n]:
            running = running + psums[n]
            if last[n]:
                expected.append(wrap_acc(running, acc_bits).tolist())
                running[:] = 0
    dut = ColumnAdder(columns=columns, psum_bits=psum_bits, acc_bits=acc_bits)
    got = []

    async def tb(ctx):
        for n in range(count):
            ctx.set(dut.psums, [int(v) for v in psums[n]])
            ctx.set(dut.valid, bool(valid[n]))
            ctx.set(dut.last, bool(last[n]))
            ctx.set(dut.en, bool(en[n]))
            if ctx.get(dut.done):
                got.append([ctx.get(dut.sums[c]) for c in range(columns)])
            await ctx.tick()

    run_sim(dut, tb)
    assert len(expected) > 10
    assert got == expected


@pytest.mark.parametrize("kwargs,message", [
    (dict(columns=0, psum_bits=16, acc_bits=32), "columns must be an integer from 1 to 64"),
    (dict(columns=4, psum_bits=33, acc_bits=32), "psum_bits must be an integer from 16 to 32"),
    (dict(columns=4, psum_bits=16, acc_bits=19), "acc_bits must be an integer from 20 to 32"),
])
def test_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ColumnAdder(**kwargs)
