"""Rescaling factors as (multiplier, shift): range, accuracy and the robust extremes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compiler.fixed_point import multiplier_shift, multipliers_shift, per_channel
from hw.arith import requantize


def test_normal_range_accuracy():
    rng = np.random.default_rng(0)
    for m in 10.0 ** rng.uniform(-12, 4, 2000):
        mult, shift = multiplier_shift(m)
        assert 1 << 14 <= mult < 1 << 15 and 0 <= shift <= 63
        # 15 significant bits: relative error at most half a unit of 2**14.
        assert abs(mult * 2.0 ** -shift - m) <= m * 2.0 ** -15


@pytest.mark.parametrize("m", [2.0 ** 15, 1e9])
def test_huge_factor_saturates_like_the_real_product(m):
    mult, shift = multiplier_shift(m)
    assert (mult, shift) == (32767, 0)
    acc = np.array([-3, -1, 0, 1, 5])
    got = requantize(acc, 0, mult, shift)
    np.testing.assert_array_equal(got, np.clip(np.rint(acc * m), -128, 127))


@pytest.mark.parametrize("m", [2.0 ** -50, 1e-20, 0.0])
def test_tiny_factor_gives_zero(m):
    mult, shift = multiplier_shift(m)
    assert shift <= 63 and mult < 1 << 14
    # the largest accumulator plus bias (33 bits) times m rounds to 0
    assert requantize(np.array([(1 << 32) - 1]), 0, mult, shift)[0] == 0


def test_rounding_up_to_next_power_of_two():
    mult, shift = multiplier_shift(math.nextafter(1.0, 0.0))
    assert (mult, shift) == (1 << 14, 14)


def test_shared_shift_and_per_channel():
    (ma, mb), shift = multipliers_shift([0.75, 0.1])
    assert 1 << 14 <= ma < 1 << 15 and mb == round(0.1 * 2 ** shift)
    mult, shift = per_channel(np.array([0.5, 3e-3]))
    assert mult.dtype == np.int16 and shift.dtype == np.uint8
    assert list(zip(mult, shift)) == [multiplier_shift(0.5), multiplier_shift(3e-3)]
    with pytest.raises(ValueError, match="non-negative"):
        multiplier_shift(-1.0)
