# amaranth: UnusedElaboratable=no
"""SystolicArray against a per-chunk NumPy model, with its latency counted in advances."""

import numpy as np
import pytest

from hw.systolic.array import SystolicArray
from hw.systolic.pe import context_bits, psum_bits
from tests.streams import run_sim


@pytest.mark.parametrize("rows,columns,contexts", [(1, 1, 1), (2, 2, 3), (2, 3, 16), (4, 4, 16),
                                                    (8, 8, 5)])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_column_sums_of_every_chunk_after_latency_advances(rows, columns, contexts, stall):
    rng = np.random.default_rng(rows * 100 + columns * 10 + contexts + int(stall * 10))
    weights = rng.integers(-128, 128, (2, contexts, columns, rows))     # [bank, d, c, r]
    count = 24
    lanes = rng.integers(-128, 128, (count, rows))
    picks = rng.integers(0, 2, count), rng.integers(0, contexts, count)  # bank, context
    expected = np.einsum("nr,ncr->nc", lanes, weights[picks[0], picks[1]])
    dut = SystolicArray(rows=rows, columns=columns, contexts=contexts)
    assert dut.latency == rows + columns + 2
    seen = {}

    async def tb(ctx):
        for bank in range(2):
            for d in range(contexts):
                for c in range(columns):
                    ctx.set(dut.w_en, 1)
                    ctx.set(dut.w_column, c)
                    ctx.set(dut.w_addr, d | bank << context_bits(contexts))
                    ctx.set(dut.w_data, [int(v) for v in weights[bank, d, c]])
                    await ctx.tick()
        ctx.set(dut.w_en, 0)
        advances = 0
        while advances < count + dut.latency:
            en = rng.random() >= stall
            n = advances
            if n < count:
                ctx.set(dut.data, [int(v) for v in lanes[n]])
                ctx.set(dut.context, int(picks[1][n]))
                ctx.set(dut.bank, int(picks[0][n]))
            ctx.set(dut.en, en)
            before = [ctx.get(dut.psums[c]) for c in range(columns)]
            await ctx.tick()
            after = [ctx.get(dut.psums[c]) for c in range(columns)]
            if not en:
                assert after == before, "the array moved while `en` was low"
                continue
            advances += 1
            # After the advance that takes chunk n, the outputs show chunk n - latency + 1.
            chunk = advances - dut.latency
            if 0 <= chunk < count:
                seen[chunk] = after

    run_sim(dut, tb)
    assert sorted(seen) == list(range(count))
    assert np.array_equal(np.array([seen[n] for n in range(count)]), expected)


def test_psum_width_is_exact_for_the_extremes():
    # 8 rows of -128 * -128 = 2**17 needs 16 + log2(8) = 19 signed bits; -128 * 127 the least.
    assert psum_bits(8) == 19
    assert 8 * 128 * 128 <= (1 << 18) - 1 and -8 * 128 * 127 >= -(1 << 18)
    assert psum_bits(1) == 16 and psum_bits(3) == 18


@pytest.mark.parametrize("kwargs,message", [
    (dict(rows=0, columns=4, contexts=4), "rows must be an integer from 1 to 64"),
    (dict(rows=4, columns=65, contexts=4), "columns must be an integer from 1 to 64"),
    (dict(rows=4, columns=4, contexts=128), "contexts must be an integer from 1 to 127"),
])
def test_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SystolicArray(**kwargs)
