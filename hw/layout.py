"""Host-side tensor layout: int8 [C, H, W] arrays to and from the accelerator's DRAM bytes.

In DRAM an activation tensor is blocked by channels: (C/lanes, H, W, lanes), so one buffer word
is `lanes` channels of one pixel. Logical channel c lives at physical channel `channels[c]`
(identity when `channels` is empty); physical channels that no logical channel maps to are
zero when the host writes the tensor and ignored when it reads one. A tensor with an explicit
channel map is one that the compiler placed inside a concatenation whose branches do not fill
whole channel groups (see compiler/memory.py).

The compiler (weights, placement) and every simulator or runtime (writing inputs, reading
outputs) share these functions, so there is exactly one definition of the layout.
`write_tensor` is the one place where a network input becomes DRAM bytes: an input the
compiler chose to pack (hw/input_packing.py) is packed there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .input_packing import as_int8_chw
from .program import TensorInfo

__all__ = ["physical_groups", "tensor_nbytes", "to_blocked", "from_blocked", "DramLike",
           "write_tensor", "read_tensor"]


def _channel_map(channels: Sequence[int], count: int) -> np.ndarray:
    if len(channels) == 0:
        return np.arange(count, dtype=np.int64)
    if len(channels) != count:
        raise ValueError(f"a channel map must have one entry per channel ({count}), "
                         f"not {len(channels)}")
    cmap = np.asarray(channels, dtype=np.int64)
    if cmap.min() < 0 or len(set(cmap.tolist())) != count:
        raise ValueError(f"a channel map must be distinct non-negative indices, not "
                         f"{list(channels)}")
    return cmap


def physical_groups(channels: int, lanes: int, channel_map: Sequence[int] = ()) -> int:
    """Channel blocks of `lanes` channels a tensor of `channels` logical channels occupies."""
    cmap = _channel_map(channel_map, channels)
    top = int(cmap.max()) + 1 if channels else 0
    return -(-top // lanes)


def tensor_nbytes(shape: Sequence[int], lanes: int, channel_map: Sequence[int] = ()) -> int:
    """DRAM bytes of a [C, H, W] (or [1, C, H, W]) tensor in blocked layout."""
    c, h, w = tuple(shape)[-3:]
    return physical_groups(c, lanes, channel_map) * h * w * lanes


def to_blocked(x: np.ndarray, lanes: int, channel_map: Sequence[int] = ()) -> bytes:
    """Bytes of an int8 [C, H, W] array in blocked layout (padding channels zero)."""
    x = as_int8_chw(x)
    c, h, w = x.shape
    cmap = _channel_map(channel_map, c)
    groups = physical_groups(c, lanes, channel_map)
    phys = np.zeros((groups * lanes, h, w), np.int8)
    phys[cmap] = x
    return phys.reshape(groups, lanes, h, w).transpose(0, 2, 3, 1).tobytes()


def from_blocked(data: bytes | np.ndarray, shape: Sequence[int], lanes: int,
                 channel_map: Sequence[int] = ()) -> np.ndarray:
    """The int8 [C, H, W] array stored as blocked-layout bytes."""
    c, h, w = tuple(shape)[-3:]
    cmap = _channel_map(channel_map, c)
    groups = physical_groups(c, lanes, channel_map)
    raw = np.frombuffer(bytes(data), np.int8)
    need = groups * h * w * lanes
    if raw.size < need:
        raise ValueError(f"a blocked [C={c}, H={h}, W={w}] tensor needs {need} bytes, "
                         f"got {raw.size}")
    phys = raw[:need].reshape(groups, h, w, lanes).transpose(0, 3, 1, 2).reshape(-1, h, w)
    return phys[cmap].copy()


class DramLike(Protocol):
    """Anything with byte-addressed DRAM access (sim.functional.FunctionalMachine has it)."""

    def read_dram(self, address: int, length: int) -> bytes: ...

    def write_dram(self, address: int, data: bytes) -> None: ...


def write_tensor(dram: DramLike | bytearray | np.ndarray, info: TensorInfo, x: np.ndarray,
                 lanes: int) -> None:
    """Write a network input (int8 [C, H, W] or [1, C, H, W]) where `info` says it lives,
    packed first when `info.packing` says so."""
    want = tuple(info.shape[-3:])
    got = tuple(np.shape(x))[-3:]
    if got != want or np.asarray(x).dtype != np.int8:
        raise ValueError(f"tensor {info.name!r} must be int8 {want}, not "
                         f"{np.asarray(x).dtype} {np.shape(x)}")
    if info.packing is not None:
        x = info.packing.pack(x)
    blob = to_blocked(x, lanes, info.channels)
    if isinstance(dram, bytearray):
        if info.address + len(blob) > len(dram):
            dram.extend(bytes(info.address + len(blob) - len(dram)))
        dram[info.address:info.address + len(blob)] = blob
    elif isinstance(dram, np.ndarray):
        dram[info.address:info.address + len(blob)] = np.frombuffer(blob, np.uint8)
    else:
        dram.write_dram(info.address, blob)


def read_tensor(dram: DramLike | bytes | bytearray | np.ndarray, info: TensorInfo,
                lanes: int) -> np.ndarray:
    """Read a network output (int8 [C, H, W]) from where `info` says it lives."""
    if info.packing is not None:
        raise ValueError(f"tensor {info.name!r} is a packed input; only unpacked tensors "
                         "can be read back")
    n = tensor_nbytes(info.shape, lanes, info.channels)
    if isinstance(dram, (bytes, bytearray, np.ndarray)):
        blob = bytes(dram[info.address:info.address + n])
    else:
        blob = dram.read_dram(info.address, n)
    return from_blocked(blob, info.shape, lanes, info.channels)
