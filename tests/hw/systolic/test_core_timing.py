# amaranth: UnusedElaboratable=no
"""Exact cycle counts of SystolicCore: latency, one chunk per cycle, passes without bubbles,
and the bank handshake that holds a reload until the last read of the released bank."""

import numpy as np
import pytest

from hw.config import preset
from hw.systolic import SystolicCore
from tests.hw.systolic.harness import model, random_pass, run_core

TINY = preset("tiny")


def _fill_drain(config) -> int:
    """Cycles a pass adds to its P * nk chunks: rows + columns + 2 (core.py)."""
    return config.rows + config.columns + 2


@pytest.mark.parametrize("rows", [4, 8])
@pytest.mark.parametrize("pixels,chunk_count", [(1, 1), (5, 3), (4, 16)])
def test_pass_takes_chunks_plus_fill_and_drain(rows, pixels, chunk_count):
    config = TINY.replace(name=f"tiny{rows}", rows=rows, columns=rows)
    rng = np.random.default_rng(rows + pixels)
    passes = [random_pass(rng, config, pixels=pixels, chunk_count=chunk_count, bank=0)]
    run = run_core(config, passes)
    assert np.array_equal(run.outputs, model(config, passes))
    chunks = pixels * chunk_count
    # The first chunk goes in the cycle after the last weight word, then one per cycle.
    assert run.chunk_cycles[0] == run.word_cycles[-1] + 1
    assert run.chunk_cycles == list(range(run.chunk_cycles[0], run.chunk_cycles[0] + chunks))
    assert run.output_cycles[-1] - run.chunk_cycles[0] == chunks + _fill_drain(config)
    # Every pixel's sums appear `latency` cycles after its last chunk.
    latency = SystolicCore(config=config).latency
    assert latency == rows + rows + 3
    last_chunks = run.chunk_cycles[chunk_count - 1::chunk_count]
    assert run.output_cycles == [cycle + latency for cycle in last_chunks]


def test_back_to_back_weight_sets_have_no_bubble():
    # The second set (2 chunks x 4 columns = 8 words) loads into bank 1 during the first
    # pass's 18 chunks; the third reloads bank 0 during the second pass's 16 chunks, which
    # cover the 8 cycles until bank 0 is released plus its 8 words (see the next test).
    rng = np.random.default_rng(21)
    shapes = [(6, 3, 0), (8, 2, 1), (3, 2, 0)]
    passes = [random_pass(rng, TINY, pixels=p, chunk_count=nk, bank=b) for p, nk, b in shapes]
    run = run_core(TINY, passes)
    assert np.array_equal(run.outputs, model(TINY, passes))
    chunks = sum(p * nk for p, nk, _ in shapes)
    first = run.chunk_cycles[0]
    assert run.chunk_cycles == list(range(first, first + chunks))
    assert run.output_cycles[-1] - first == chunks + _fill_drain(TINY)


@pytest.mark.parametrize("middle_chunks,bubble", [(15, 0), (14, 1), (10, 5)])
def test_reload_waits_for_the_released_bank(middle_chunks, bubble):
    # Pass A (bank 0) releases on its last chunk at cycle t. Bank 0 is free again after the
    # last PE's read, rows + columns = 8 cycles later, so pass C's 2 x 4 = 8 words go in at
    # t+8 .. t+15 and its first chunk at t+16: pass B (bank 1) hides that if it has >= 15
    # chunks; otherwise exactly the difference is lost.
    rng = np.random.default_rng(22)
    a = random_pass(rng, TINY, pixels=4, chunk_count=2, bank=0)
    b = random_pass(rng, TINY, pixels=middle_chunks, chunk_count=1, bank=1)
    c = random_pass(rng, TINY, pixels=3, chunk_count=2, bank=0)
    run = run_core(TINY, [a, b, c])
    assert np.array_equal(run.outputs, model(TINY, [a, b, c]))
    release = run.chunk_cycles[7]
    reload_words = run.word_cycles[-8:]
    assert reload_words == list(range(release + 8, release + 16))
    first_c = run.chunk_cycles[8 + middle_chunks]
    assert first_c == release + middle_chunks + 1 + bubble
