"""The host side of the board UART bridge (hw/boards/bridge.py): request bytes and replies.

Each function returns `(request, reply_bytes)`: the bytes to send and how many bytes the board
answers. Any byte transport drives them: the Amaranth test of the board top level
(tests/hw/boards/test_board_top.py) or a serial port on a real board (115200 baud, 8N1).
"""

from __future__ import annotations

import struct

from hw.boards.bridge import Command

__all__ = ["write_dram", "read_dram", "write_csr", "read_csr", "MAX_TRANSFER"]

#: Bytes one DRAM request moves (the 16-bit length field).
MAX_TRANSFER = 0xFFFF


def _check(addr: int, length: int) -> None:
    if not 0 <= addr < 1 << 32:
        raise ValueError(f"DRAM address must fit in 32 bits, not {addr!r}")
    if not 0 <= length <= MAX_TRANSFER:
        raise ValueError(f"a transfer moves 0 to {MAX_TRANSFER} bytes, not {length!r}")


def write_dram(addr: int, data: bytes) -> tuple[bytes, int]:
    """Answer: one byte, 0x01, once the data is in DRAM."""
    _check(addr, len(data))
    return struct.pack("<BIH", Command.WRITE_DRAM.value, addr, len(data)) + bytes(data), 1


def read_dram(addr: int, length: int) -> tuple[bytes, int]:
    """Answer: the `length` bytes."""
    _check(addr, length)
    return struct.pack("<BIH", Command.READ_DRAM.value, addr, length), length


def write_csr(reg: int, value: int) -> tuple[bytes, int]:
    """Answer: one byte, the AXI4-Lite write response (0 = OKAY)."""
    return struct.pack("<BBI", Command.WRITE_CSR.value, reg, value), 1


def read_csr(reg: int) -> tuple[bytes, int]:
    """Answer: the register's 4 bytes, little-endian."""
    return struct.pack("<BB", Command.READ_CSR.value, reg), 4
