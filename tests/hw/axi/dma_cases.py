"""Descriptor cases and NumPy reference patterns shared by the read and write engine tests."""

from __future__ import annotations

import numpy as np

from hw.axi.bursts import word_beats_log2
from hw.config import AcceleratorConfig

__all__ = ["word_offsets", "random_descriptor", "descriptor_payload"]


def word_offsets(desc: dict, word_bytes: int) -> np.ndarray:
    """DRAM byte addresses [words, word_bytes] of a descriptor, in buffer order (the same
    pattern as sim/functional.py `_dram_offsets`)."""
    i2 = np.arange(desc["count2"], dtype=np.int64)[:, None, None] * desc["stride2"]
    i1 = np.arange(desc["count1"], dtype=np.int64)[None, :, None] * desc["stride1"]
    i0 = np.arange(desc["size0"], dtype=np.int64)[None, None, :] * word_bytes
    starts = (desc["dram_addr"] + i2 + i1 + i0).reshape(-1)
    return starts[:, None] + np.arange(word_bytes, dtype=np.int64)[None, :]


def descriptor_payload(config: AcceleratorConfig, desc: dict, word_bytes: int,
                       tag: int = 0) -> dict:
    """The `Descriptor` payload (a dict for `ctx.set`) of a pattern of `word_bytes` words."""
    return {**desc, "beats_log2": word_beats_log2(config, word_bytes), "tag": tag}


def random_descriptor(rng: np.random.Generator, *, word_bytes: int, dims: int,
                      memory_bytes: int, max_words: int, disjoint: bool = False) -> dict:
    """A random 1-, 2- or 3-D pattern of at most `max_words` words inside the memory.
    `disjoint` keeps rows from overlapping (for writes, whose result would otherwise depend
    on order)."""
    size0 = int(rng.integers(1, max(2, max_words // 4) + 1))
    count1 = int(rng.integers(1, 5)) if dims >= 2 else 1
    count2 = int(rng.integers(1, 4)) if dims >= 3 else 1
    while size0 * count1 * count2 > max_words:
        size0 = max(1, size0 // 2)
    row = size0 * word_bytes
    gap1 = int(rng.integers(0 if disjoint else -size0 // 2, 8)) * word_bytes
    stride1 = max(word_bytes, row + gap1) if count1 > 1 else 0
    plane = stride1 * count1 if count1 > 1 else row
    stride2 = plane + int(rng.integers(0, 4)) * word_bytes if count2 > 1 else 0
    extent = (count2 - 1) * stride2 + (count1 - 1) * stride1 + row
    if extent > memory_bytes:
        return random_descriptor(rng, word_bytes=word_bytes, dims=dims,
                                 memory_bytes=memory_bytes, max_words=max(1, max_words // 2),
                                 disjoint=disjoint)
    slots = (memory_bytes - extent) // word_bytes
    dram_addr = int(rng.integers(0, slots + 1)) * word_bytes
    return {"dram_addr": dram_addr, "size0": size0, "count1": count1, "stride1": stride1,
            "count2": count2, "stride2": stride2}
