# amaranth: UnusedElaboratable=no
"""ProcessingElement: forwarding after 1 advance, multiply-add after 3, two weight banks."""

import numpy as np
import pytest

from hw.systolic.pe import ProcessingElement, context_bits
from tests.streams import run_sim


@pytest.mark.parametrize("contexts", [1, 6, 16])
def test_forwards_and_multiplies_per_advance(contexts):
    rng = np.random.default_rng(contexts)
    weights = rng.integers(-128, 128, (2, contexts))               # [bank, context]
    count = 40
    a = rng.integers(-128, 128, count)
    bank, context = rng.integers(0, 2, count), rng.integers(0, contexts, count)
    psum_in = rng.integers(-(1 << 16), 1 << 16, count)
    dut = ProcessingElement(contexts=contexts, psum_in_bits=17, psum_out_bits=18)
    forwarded, sums = {}, {}

    async def tb(ctx):
        for b in range(2):
            for d in range(contexts):
                ctx.set(dut.w_en, 1)
                ctx.set(dut.w_addr, d | b << context_bits(contexts))
                ctx.set(dut.w_data, int(weights[b, d]))
                await ctx.tick()
        ctx.set(dut.w_en, 0)
        advances = 0
        while advances < count + 3:
            en = rng.random() >= 0.3
            n = advances
            if n < count:
                ctx.set(dut.a_in, int(a[n]))
                ctx.set(dut.context_in, int(context[n]))
                ctx.set(dut.bank_in, int(bank[n]))
            # The sum from above belongs to the lane that came in 2 advances earlier.
            if 0 <= n - 2 < count:
                ctx.set(dut.psum_in, int(psum_in[n - 2]))
            ctx.set(dut.en, en)
            await ctx.tick()
            if en:
                advances += 1
                if advances - 1 < count:
                    forwarded[advances - 1] = ctx.get(dut.a_out)
                if 0 <= advances - 3 < count:
                    sums[advances - 3] = ctx.get(dut.psum_out)

    run_sim(dut, tb)
    assert [forwarded[n] for n in range(count)] == list(a)
    assert [sums[n] for n in range(count)] == list(psum_in + a * weights[bank, context])


def test_read_and_write_of_one_weight_in_a_cycle_reads_the_old_weight():
    dut = ProcessingElement(contexts=2, psum_in_bits=16, psum_out_bits=16)
    sums = []

    async def tb(ctx):
        ctx.set(dut.en, 1)
        ctx.set(dut.a_in, 3)
        for weight in (5, -7):          # write 5, then read it while writing -7
            ctx.set(dut.w_en, 1)
            ctx.set(dut.w_data, weight)
            await ctx.tick()
        ctx.set(dut.w_en, 0)
        for _ in range(4):
            await ctx.tick()
            sums.append(ctx.get(dut.psum_out))

    run_sim(dut, tb)
    # The sum after edge k comes from the read at edge k-2: edge 0 read the empty memory while
    # 5 was written, edge 1 read 5 while -7 was written (the old weight), then -7.
    assert sums == [0, 15, -21, -21]


@pytest.mark.parametrize("kwargs,message", [
    (dict(contexts=0, psum_in_bits=16, psum_out_bits=16), "contexts must be an integer"),
    (dict(contexts=4, psum_in_bits=15, psum_out_bits=16), "psum_in_bits must be an integer"),
    (dict(contexts=4, psum_in_bits=16, psum_out_bits=True), "psum_out_bits must be an integer"),
])
def test_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProcessingElement(**kwargs)
