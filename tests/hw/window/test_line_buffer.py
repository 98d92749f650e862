# amaranth: UnusedElaboratable=no
"""LineBuffer against a dict of written words: one write and one read per cycle, read latency 2,
both read stages held while r_en is low."""

from __future__ import annotations

import numpy as np
import pytest

from hw.config import preset
from hw.lint import lint_verilog, to_verilog
from hw.window import LineBuffer
from tests.streams import run_sim


# 100 words per row: the slot * words address is a sum of shifted slots, not one shift.
ODD_ROWS = preset("tiny").replace(name="tiny_rows100", line_buffer_words=100)
CONFIGS = {"tiny": preset("tiny"), "default": preset("default"), "tiny_rows100": ODD_ROWS}


@pytest.mark.parametrize("name, row_slots", [("tiny", 15), ("tiny", 1), ("default", 15),
                                             ("tiny_rows100", 13)])
def test_write_read(name, row_slots):
    config = CONFIGS[name]
    words = config.line_buffer_words
    dut = LineBuffer(config=config, row_slots=row_slots)
    rng = np.random.default_rng(row_slots)
    model: dict[tuple[int, int], int] = {}
    checked = []

    async def bench(ctx):
        # Every cycle writes a random word and reads a random written one; a read presented
        # at an edge with r_en high shows after the next such edge (READ_LATENCY = 2), and
        # every fifth cycle has r_en low, holding both read stages.
        stage1 = shown = None
        for cycle in range(200):
            slot, col = int(rng.integers(row_slots)), int(rng.choice([0, words - 1,
                                                                      rng.integers(words)]))
            value = int.from_bytes(rng.bytes(config.rows), "little")
            ctx.set(dut.w_en, 1)
            ctx.set(dut.w_slot, slot)
            ctx.set(dut.w_col, col)
            ctx.set(dut.w_data, value)
            read_enable = cycle % 5 != 4
            ctx.set(dut.r_en, int(read_enable))
            address = list(model)[int(rng.integers(len(model)))] if model else (0, 0)
            ctx.set(dut.r_slot, address[0])
            ctx.set(dut.r_col, address[1])
            if read_enable:
                shown, stage1 = stage1, model.get(address)
            await ctx.tick()
            model[(slot, col)] = value
            if shown is not None:
                assert ctx.get(dut.r_data) == shown
                checked.append(shown)

    run_sim(dut, bench)
    assert LineBuffer.READ_LATENCY == 2
    assert len(checked) > 150


def test_rejects():
    with pytest.raises(ValueError, match="row_slots must be a positive integer, not 0"):
        LineBuffer(config=preset("tiny"), row_slots=0)
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig"):
        LineBuffer(config=None, row_slots=2)


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_lint(name):
    lint_verilog(to_verilog(LineBuffer(config=preset(name), row_slots=15), "line_buffer"),
                 "line_buffer")
