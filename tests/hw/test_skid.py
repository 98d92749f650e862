"""The skid buffer (hw/skid.py) against a cycle-by-cycle Python model, on random valid and
ready patterns, and its ordering under random gaps and stalls."""

import numpy as np
import pytest

from hw.lint import lint_verilog, to_verilog
from hw.skid import SkidBuffer
from tests.streams import collect, feed, run_sim


@pytest.mark.parametrize("seed", range(3))
def test_cycle_by_cycle_against_a_model(seed):
    """The producer holds its item until taken (stream rules); each cycle the model says
    i.ready (the buffer is empty: not a function of o.ready), o.valid and o.payload."""
    dut = SkidBuffer(8)
    rng = np.random.default_rng(seed)

    async def bench(ctx):
        full, held, offer, nxt = False, 0, None, 0
        taken = 0
        for _ in range(600):
            if offer is None and rng.random() < 0.7:
                offer, nxt = nxt, (nxt + 1) % 256
            ready = bool(rng.random() < 0.6)
            ctx.set(dut.i.valid, offer is not None)
            ctx.set(dut.i.payload, offer or 0)
            ctx.set(dut.o.ready, ready)
            assert ctx.get(dut.i.ready) == (not full)
            assert ctx.get(dut.o.valid) == (full or offer is not None)
            if full or offer is not None:
                assert ctx.get(dut.o.payload) == (held if full else offer)
                if ready:
                    assert ctx.get(dut.o.payload) == taken % 256
                    taken += 1
            # the model's next state: the item on `i` is taken when the buffer was empty
            taken_in = offer is not None and not full
            if full:
                full = not ready
            elif offer is not None and not ready:
                full, held = True, offer
            if taken_in:
                offer = None
            await ctx.tick()
        assert taken > 200

    run_sim(dut, bench)


def test_order_with_gaps_and_stalls():
    dut = SkidBuffer(16)
    items = list(range(300))
    got = []

    async def producer(ctx):
        await feed(ctx, dut.i, items, gaps=0.3, seed=4)

    async def consumer(ctx):
        got.extend(await collect(ctx, dut.o, len(items), stalls=0.4, seed=5))

    run_sim(dut, producer, consumer)
    assert got == items


def test_verilog_is_lint_clean():
    lint_verilog(to_verilog(SkidBuffer(12), "skid"), "skid")
