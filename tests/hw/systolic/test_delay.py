"""Delay lines: values, taps, and the downstream-first register names the Verilated model
relies on to shift in place (hw/systolic/delay.py)."""

import numpy as np
import pytest
from amaranth import Module, Signal, signed
from amaranth.back import verilog
from amaranth.sim import Simulator

from hw.systolic.delay import delay_line, delayed, downstream_first


def test_downstream_first_names_sort_output_first():
    names = [downstream_first(k, 12) for k in range(12)]
    assert names[0] == "11" and names[-1] == "00"
    assert sorted(names) == names[::-1]          # the output end sorts first
    assert downstream_first(0, 1) == "0"
    with pytest.raises(ValueError, match="index must be in 0..3"):
        downstream_first(4, 4)


def test_zero_stages_is_the_value_itself():
    m = Module()
    value = Signal(8)
    assert delay_line(m, Signal(), value, 0, name="x") == [value]
    assert delayed(m, Signal(), value, 0, name="x") is value
    verilog.convert(m, ports=[value])      # elaborates (and uses) the module


@pytest.mark.parametrize("stages", [1, 3, 11])
def test_delay_line_taps_follow_the_enable(stages):
    m = Module()
    en = Signal()
    value = Signal(signed(8))
    taps = delay_line(m, en, value, stages, name="line")
    assert len(taps) == stages + 1 and taps[0] is value
    assert taps[-1].shape() == value.shape()
    rng = np.random.default_rng(stages)
    inputs = rng.integers(-128, 128, 60)
    enables = rng.integers(0, 2, 60)
    seen = []

    async def bench(ctx):
        history = []          # values taken by advances, newest last
        for x, e in zip(inputs, enables):
            ctx.set(value, int(x))
            ctx.set(en, int(e))
            got = [ctx.get(t) for t in taps[1:]]
            want = [history[-k] if k <= len(history) else 0 for k in range(1, stages + 1)]
            seen.append(got == want)
            await ctx.tick()
            if e:
                history.append(int(x))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert all(seen)


def test_delay_line_is_written_output_first():
    m = Module()
    en, value = Signal(), Signal(8)
    out = Signal(8)
    m.d.comb += out.eq(delayed(m, en, value, 12, name="line"))
    text = verilog.convert(m, ports=[en, value, out], emit_src=False)
    # Registers named from the output back, and their updates in that order too.
    # (line_00 is the output port itself.)
    updates = [text.index(f"line_{k:02d} <=") for k in range(1, 12)]
    assert updates == sorted(updates)
    with pytest.raises(ValueError, match="non-negative"):
        delay_line(m, en, value, -1, name="bad")
