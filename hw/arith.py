"""The accelerator's integer arithmetic rules, defined once.

Every rounding, wrapping and saturation rule of Systolica lives here: the functional model
(sim/functional.py) executes instructions with these functions, the compiler's golden reference
(compiler/reference.py) executes quantized networks with them, and the RTL is tested against
both. All functions take and return NumPy integer arrays and are exact (int64 inside).
"""

from __future__ import annotations

import numpy as np

from .isa import Activation

__all__ = ["round_shift", "saturate8", "wrap_acc", "activate", "requantize", "unpack_params",
           "pack_params"]


def round_shift(x: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """Arithmetic right shift rounding half up (towards +inf): floor((x + 2**(s-1)) / 2**s);
    shift 0 returns x unchanged. Inputs are int64; |x| < 2**62."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    bias = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
    return np.right_shift(x + bias, shift)


def saturate8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -128, 127).astype(np.int8)


def wrap_acc(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap to `bits` (the accumulator width), as int64."""
    x = np.asarray(x, dtype=np.int64)
    half = np.int64(1) << (bits - 1)
    return ((x + half) & ((np.int64(1) << bits) - 1)) - half


def activate(y: np.ndarray, activation: Activation, lut: np.ndarray) -> np.ndarray:
    """Activation on saturated int8 values: none, ReLU, or the 256-entry table (y -> lut[y+128])."""
    if activation is Activation.RELU:
        return np.maximum(y, 0).astype(np.int8)
    if activation is Activation.LUT:
        return lut[y.astype(np.int64) + 128].astype(np.int8)
    return y.astype(np.int8)


def requantize(acc: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray
               ) -> np.ndarray:
    """Post-processing of one accumulator value per column: saturate8(round_shift((acc + bias)
    * mult, shift)); the sum acc + bias is exact (33 bits), the product exact in 64 bits."""
    t = (np.asarray(acc, np.int64) + np.asarray(bias, np.int64)) * np.asarray(mult, np.int64)
    return saturate8(round_shift(t, shift))


def unpack_params(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bias int32, mult int16, shift 0..63) per column of parameter-buffer words [..., 8*cols]."""
    raw = np.ascontiguousarray(words, dtype=np.uint8).reshape(*words.shape[:-1], -1, 8)
    bias = raw[..., 0:4].copy().view("<i4")[..., 0].astype(np.int64)
    mult = raw[..., 4:6].copy().view("<i2")[..., 0].astype(np.int64)
    shift = (raw[..., 6] & 63).astype(np.int64)
    return bias, mult, shift


def pack_params(bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> bytes:
    """Bytes of parameter words for per-channel (bias, mult, shift); channel count must be a
    multiple of the columns for whole words."""
    n = len(bias)
    raw = np.zeros((n, 8), np.uint8)
    raw[:, 0:4] = np.asarray(bias, "<i4").reshape(n, 1).view(np.uint8)
    raw[:, 4:6] = np.asarray(mult, "<i2").reshape(n, 1).view(np.uint8)
    raw[:, 6] = np.asarray(shift, np.uint8)
    return raw.tobytes()


