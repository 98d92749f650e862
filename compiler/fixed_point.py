"""Real-valued rescaling factors as the hardware's (multiplier, shift) pairs.

The post-processing computes round_shift(v * mult, shift) (hw/arith.py) with a signed 16-bit
multiplier and a 6-bit shift. A factor M > 0 is written as mult * 2**-shift with mult in
[2**14, 2**15): 15 significant bits, a relative error of at most 2**-15 (half a unit of the
multiplier). Factors outside what 16 bits and a shift of 0..63 can express are handled so
that the integer result stays right:
- M >= 2**15: (32767, 0). Any |v| >= 1 then saturates the int8 result, exactly as v * M would;
- M < 2**-49 (shift would exceed 63): shift 63 and mult = round(M * 2**63), down to 0: the
  product of a 33-bit accumulator and M is below 2**-16, i.e. 0 after rounding, either way.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MULT_BITS", "MAX_SHIFT", "multiplier_shift", "multipliers_shift", "per_channel"]

MULT_BITS = 15      #: magnitude bits of the signed 16-bit multiplier
MAX_SHIFT = 63      #: the 6-bit shift field


def multiplier_shift(m: float) -> tuple[int, int]:
    """(mult, shift) with mult * 2**-shift closest to `m` (m >= 0, finite)."""
    if not math.isfinite(m) or m < 0:
        raise ValueError(f"a rescaling factor must be finite and non-negative, not {m!r}")
    if m == 0:
        return 0, 0
    mantissa, exponent = math.frexp(m)              # m = mantissa * 2**exponent, mantissa in [0.5, 1)
    shift = MULT_BITS - exponent
    mult = round(mantissa * (1 << MULT_BITS))       # in [2**14, 2**15]
    if mult == 1 << MULT_BITS:
        mult, shift = mult >> 1, shift - 1
    if shift < 0:
        return (1 << MULT_BITS) - 1, 0
    if shift > MAX_SHIFT:
        return round(math.ldexp(m, MAX_SHIFT)), MAX_SHIFT
    return mult, shift


def multipliers_shift(factors: list[float]) -> tuple[list[int], int]:
    """Several factors sharing one shift (the adder's two inputs): the largest factor sets the
    shift as in `multiplier_shift`, the others are rounded at that shift."""
    top = max(factors)
    mult, shift = multiplier_shift(top)
    limit = (1 << MULT_BITS) - 1
    return [mult if f == top else min(round(math.ldexp(f, shift)), limit) for f in factors], shift


def per_channel(factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`multiplier_shift` of each factor: (int16 mult, uint8 shift) arrays."""
    pairs = [multiplier_shift(float(f)) for f in np.asarray(factors, np.float64).reshape(-1)]
    return (np.array([p[0] for p in pairs], np.int16), np.array([p[1] for p in pairs], np.uint8))
