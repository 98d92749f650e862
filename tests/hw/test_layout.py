"""Blocked DRAM layout of activations: round trips, channel maps with gaps, zero padding
channels, and writing/reading tensors through TensorInfo."""

from __future__ import annotations

import numpy as np
import pytest

from hw.layout import from_blocked, physical_groups, read_tensor, tensor_nbytes, to_blocked, \
    write_tensor
from hw.program import TensorInfo


@pytest.mark.parametrize("lanes", [4, 16, 32])
@pytest.mark.parametrize("channels", [1, 3, 16, 17, 20])
def test_round_trip(lanes, channels):
    rng = np.random.default_rng(channels * lanes)
    x = rng.integers(-128, 128, (channels, 5, 7)).astype(np.int8)
    blob = to_blocked(x, lanes)
    assert len(blob) == tensor_nbytes(x.shape, lanes) == -(-channels // lanes) * lanes * 35
    np.testing.assert_array_equal(from_blocked(blob, x.shape, lanes), x)


def test_word_is_lanes_channels_of_one_pixel_and_padding_is_zero():
    x = np.arange(5 * 2 * 3, dtype=np.int8).reshape(5, 2, 3)
    raw = np.frombuffer(to_blocked(x, 4), np.int8).reshape(2, 2, 3, 4)   # groups, H, W, lanes
    np.testing.assert_array_equal(raw[0, 1, 2], x[0:4, 1, 2])
    np.testing.assert_array_equal(raw[1, 0, 1], [x[4, 0, 1], 0, 0, 0])


def test_channel_map_with_gaps():
    cmap = (0, 1, 2, 4, 5, 6, 8)             # 3 + 3 + 1 channels, each branch group-aligned
    x = np.random.default_rng(0).integers(-128, 128, (7, 3, 3)).astype(np.int8)
    assert physical_groups(7, 4, cmap) == 3
    blob = to_blocked(x, 4, cmap)
    np.testing.assert_array_equal(from_blocked(blob, x.shape, 4, cmap), x)
    raw = np.frombuffer(blob, np.int8).reshape(3, 3, 3, 4)
    assert not raw[0, :, :, 3].any() and not raw[1, :, :, 3].any()


def test_write_and_read_tensor_through_tensor_info():
    info = TensorInfo(name="x", address=128, shape=(1, 6, 4, 4), scale=0.1)
    x = np.random.default_rng(1).integers(-128, 128, (1, 6, 4, 4)).astype(np.int8)
    dram = bytearray(64)
    write_tensor(dram, info, x, 4)
    assert len(dram) == 128 + 2 * 16 * 4
    np.testing.assert_array_equal(read_tensor(dram, info, 4), x[0])
    with pytest.raises(ValueError, match="must be int8"):
        write_tensor(dram, info, x.astype(np.int16), 4)


def test_bad_channel_map_is_rejected():
    with pytest.raises(ValueError, match="distinct"):
        to_blocked(np.zeros((2, 1, 1), np.int8), 4, (1, 1))
