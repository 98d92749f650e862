"""Host-side packing of a network input: kernel taps gathered into channels before the DMA.

The accelerator maps one kernel tap of up to `lanes` input channels per chunk, so a first
layer with 3 input channels fills 3 of 16 lanes (18.8% of the array). The compiler can ask the
host to write such an input *packed* (compiler/input_packing.py chooses and rewrites the conv):

    P[(dy * taps + dx) * C + c, Y, X] = x[c, step * Y + dy - pad_top, step * X + dx - pad_left]

for dy, dx in [0, taps), zero where the source pixel lies outside x (this reproduces the
convolution's zero padding exactly). `step` = `taps` is space-to-depth; `taps` = the kernel
and `step` = the stride is im2col (a 1x1 convolution); stride 1 with `taps` > 1 packs
overlapping windows. The packed tensor is the same int8 values at the same scale, so the
convolution's int32 sums are the same sums in another order: bit-exact.

The program file records the packing in the input's tensor map entry (hw/program.py), and
`hw.layout.write_tensor` applies it, so every runtime and simulator packs inputs with this one
function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["InputPacking", "as_int8_chw"]

#: Field order of the JSON form (docs/program-format.md).
_FIELDS = ("step", "taps", "pad_top", "pad_left", "height", "width")


def as_int8_chw(x) -> np.ndarray:
    """`x` as an int8 [C, H, W] array ([1, C, H, W] loses its batch axis); ValueError otherwise."""
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.dtype != np.int8:
        raise ValueError(f"expected an int8 [C, H, W] array, not {x.dtype} {x.shape}")
    return x


@dataclass(frozen=True)
class InputPacking:
    """How a logical int8 [C, H, W] input becomes the stored [C * taps^2, height, width]."""
    step: int        #: source pixels between neighbouring packed pixels
    taps: int        #: taps gathered per side (fewer than step skips source pixels)
    pad_top: int     #: source rows above the image that packed row 0 starts at
    pad_left: int    #: source columns left of the image that packed column 0 starts at
    height: int      #: packed rows
    width: int       #: packed columns

    def __post_init__(self) -> None:
        for name in _FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"packing field {name} must be an int, not {value!r}")
        for name in ("step", "taps", "height", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"packing field {name} must be >= 1, not "
                                 f"{getattr(self, name)}")
        if self.pad_top < 0 or self.pad_left < 0:
            raise ValueError(f"packing pads must be >= 0, not ({self.pad_top}, "
                             f"{self.pad_left})")

    def packed_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """[C', H', W'] stored for a logical [C, H, W] (or [1, C, H, W]) input."""
        return (int(shape[-3]) * self.taps * self.taps, self.height, self.width)

    def pack(self, x: np.ndarray) -> np.ndarray:
        """The packed int8 [C * taps^2, height, width] of an int8 [C, H, W] (or [1, C, H, W])."""
        x = as_int8_chw(x)
        c, h, w = x.shape
        t, a = self.taps, self.step
        # Pad enough on every side that each gathered pixel is an index of `padded`.
        rows = a * (self.height - 1) + t
        cols = a * (self.width - 1) + t
        padded = np.zeros((c, max(rows, self.pad_top + h), max(cols, self.pad_left + w)),
                          np.int8)
        padded[:, self.pad_top:self.pad_top + h, self.pad_left:self.pad_left + w] = x
        out = np.empty((t, t, c, self.height, self.width), np.int8)
        for dy in range(t):
            for dx in range(t):
                out[dy, dx] = padded[:, dy:dy + a * (self.height - 1) + 1:a,
                                     dx:dx + a * (self.width - 1) + 1:a]
        return out.reshape(t * t * c, self.height, self.width)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> InputPacking:
        if not isinstance(d, dict) or set(d) != set(_FIELDS):
            raise ValueError(f"a packing entry must be an object with exactly the keys "
                             f"{', '.join(_FIELDS)}, not {d!r}")
        return cls(**{name: d[name] for name in _FIELDS})
