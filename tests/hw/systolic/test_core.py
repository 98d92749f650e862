# amaranth: UnusedElaboratable=no
"""SystolicCore against the einsum model: sizes, chunk counts, gaps, backpressure, extremes."""

import numpy as np
import pytest

from hw.config import preset
from hw.systolic import SystolicCore
from tests.hw.systolic.harness import Pass, model, random_pass, run_core

TINY = preset("tiny")


def _config(rows: int, **changes):
    return TINY.replace(name=f"tiny{rows}", rows=rows, columns=rows, **changes)


# rows=2 is no valid AcceleratorConfig (a 16-bit word is narrower than the 32-bit minimum
# bus), so 2 x 2 runs in test_array.py, on the array and column adder without the config.
@pytest.mark.parametrize("rows", [4, 8])
@pytest.mark.parametrize("pixels,chunk_count", [(1, 1), (6, 1), (5, 3), (1, 16), (3, 16)])
def test_pass_matches_einsum(rows, pixels, chunk_count):
    config = _config(rows)
    rng = np.random.default_rng(100 * rows + 10 * pixels + chunk_count)
    passes = [random_pass(rng, config, pixels=pixels, chunk_count=chunk_count, bank=0)]
    assert np.array_equal(run_core(config, passes).outputs, model(config, passes))


@pytest.mark.parametrize("gaps,stalls,weight_gaps", [(0.4, 0.0, 0.0), (0.0, 0.6, 0.0),
                                                      (0.3, 0.5, 0.5)])
def test_gaps_and_backpressure_lose_and_duplicate_nothing(gaps, stalls, weight_gaps):
    # Three passes alternate banks, so loads wait on releases while the output stalls.
    rng = np.random.default_rng(11)
    passes = [random_pass(rng, TINY, pixels=pixels, chunk_count=nk, bank=n % 2)
              for n, (pixels, nk) in enumerate([(7, 1), (4, 5), (3, 16), (6, 2)])]
    run = run_core(TINY, passes, gaps=gaps, stalls=stalls, weight_gaps=weight_gaps, seed=5)
    assert np.array_equal(run.outputs, model(TINY, passes))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_pass_sequences(seed):
    # Random shapes, banks alternating, some passes keeping their weights for the next one.
    rng = np.random.default_rng(seed)
    passes, bank = [], 0
    for _ in range(6):
        reuse = passes and not passes[-1].release
        if reuse:
            prev = passes[-1]
            chunks = rng.integers(-128, 128, (int(rng.integers(1, 5)), prev.chunk_count,
                                              TINY.rows), dtype=np.int8)
            passes.append(Pass(prev.weights, chunks, prev.bank, load=False))
            continue
        bank ^= 1
        passes.append(random_pass(rng, TINY, pixels=int(rng.integers(1, 6)),
                                  chunk_count=int(rng.integers(1, TINY.contexts + 1)),
                                  bank=bank, release=bool(rng.random() < 0.7)))
    passes[-1].release = True
    run = run_core(TINY, passes, gaps=0.2 * seed, stalls=0.25 * seed, weight_gaps=0.3,
                   seed=seed)
    assert np.array_equal(run.outputs, model(TINY, passes))


def test_single_chunk_pixels_under_heavy_backpressure():
    # One result per chunk is the densest output: every stall of `o` must hold the pipeline.
    config = _config(4)
    rng = np.random.default_rng(12)
    passes = [random_pass(rng, config, pixels=40, chunk_count=1, bank=0)]
    run = run_core(config, passes, stalls=0.7, seed=9)
    assert np.array_equal(run.outputs, model(config, passes))


@pytest.mark.parametrize("contexts", [1, 5])
def test_one_and_non_power_of_two_contexts(contexts):
    config = TINY.replace(name=f"tiny_ctx{contexts}", contexts=contexts)
    rng = np.random.default_rng(13)
    passes = [random_pass(rng, config, pixels=3, chunk_count=contexts, bank=0),
              random_pass(rng, config, pixels=4, chunk_count=(contexts + 1) // 2, bank=1),
              random_pass(rng, config, pixels=2, chunk_count=contexts, bank=0)]
    assert np.array_equal(run_core(config, passes).outputs, model(config, passes))


def test_reused_weights_need_no_reload():
    # A pass that keeps its bank (no release) lets the next pass use the same weights.
    rng = np.random.default_rng(14)
    first = random_pass(rng, TINY, pixels=3, chunk_count=4, bank=1, release=False)
    second = Pass(first.weights, rng.integers(-128, 128, (5, 4, TINY.rows), dtype=np.int8),
                  bank=1, load=False)
    run = run_core(TINY, [first, second])
    assert np.array_equal(run.outputs, model(TINY, [first, second]))
    assert len(run.word_cycles) == 4 * TINY.columns


@pytest.mark.parametrize("acc_bits", [32, 20])
def test_extreme_values_over_all_contexts(acc_bits):
    # -128 * -128 on every lane of every context: 16 contexts x 8 rows x 16384 = 2**21,
    # which wraps to 0 in 20 bits; -128 * 127 gives -2**21 + 2**14 * 8, the most negative sum.
    config = _config(8, acc_bits=acc_bits)
    nk = config.contexts
    weights = np.full((nk, config.columns, config.rows), -128, dtype=np.int8)
    weights[:, 1::2, :] = 127
    chunks = np.full((3, nk, config.rows), -128, dtype=np.int8)
    chunks[1] = 127
    passes = [Pass(weights, chunks, bank=0)]
    expected = model(config, passes)
    assert expected[0, 0] == (1 << 21 if acc_bits == 32 else 0)
    assert np.array_equal(run_core(config, passes).outputs, expected)


def test_rejects_a_non_config():
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig"):
        SystolicCore(config="tiny")
