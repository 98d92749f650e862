"""What every op lowering shares: the token scheduler, constant segments, tensor placements,
on-chip buffer bookkeeping and the per-layer traffic counters.

DMA instructions go through `load` / `store`, which state the buffer words and DRAM bytes they
touch so the scheduler can order them; compute instructions state theirs explicitly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from hw import isa
from hw.config import AcceleratorConfig
from hw.isa import Buffer, Instruction

from ..memory import ConstantAllocator, Placement
from .schedule import DRAM, Access, TokenScheduler

__all__ = ["LayerStats", "SlotCache", "Ring", "CodegenContext"]


@dataclass
class LayerStats:
    """Figures of one layer for the compile report."""
    dram_read: int = 0
    dram_write: int = 0
    instructions: int = 0
    tiles: int = 0
    constant_bytes: int = 0


class SlotCache:
    """Fixed-size slots of an on-chip buffer holding keyed constant blocks (weight sets,
    parameter words). `get` returns the slot and whether the block must be loaded; when every
    key of a layer fits, nothing is evicted and each block is loaded once."""

    def __init__(self, *, base: int, slot_words: int, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"a slot cache needs at least one slot, not {slots}")
        self.base, self.slot_words, self.slots = base, slot_words, slots
        self._where: OrderedDict[Hashable, int] = OrderedDict()

    def get(self, key: Hashable) -> tuple[int, bool]:
        if key in self._where:
            self._where.move_to_end(key)
            return self._where[key], False
        if len(self._where) < self.slots:
            slot = self.base + len(self._where) * self.slot_words
        else:
            _, slot = self._where.popitem(last=False)   # least recently used
        self._where[key] = slot
        return slot, True


class Ring:
    """Round-robin slots of one buffer (input tiles, output tiles)."""

    def __init__(self, *, base: int, slot_words: int, slots: int) -> None:
        self.base, self.slot_words, self.slots = base, slot_words, max(1, slots)
        self._next = 0

    def take(self) -> int:
        addr = self.base + self._next * self.slot_words
        self._next = (self._next + 1) % self.slots
        return addr


@dataclass
class CodegenContext:
    config: AcceleratorConfig
    scheduler: TokenScheduler
    constants: ConstantAllocator
    placements: dict[str, Placement]
    stats: LayerStats = field(default_factory=LayerStats)

    @property
    def lanes(self) -> int:
        return self.config.lanes

    def constant(self, name: str, data: bytes) -> int:
        self.stats.constant_bytes += len(data)
        return self.constants.add(name, data)

    # ---- instructions ---------------------------------------------------------------------
    def load(self, buffer: Buffer, buf_addr: int, dram_addr: int, size0: int, count1: int = 1,
             stride1: int = 0, count2: int = 1, stride2: int = 0) -> None:
        instr = isa.Load(buffer=buffer, buf_addr=buf_addr, dram_addr=dram_addr, size0=size0,
                         count1=count1, stride1=stride1, count2=count2, stride2=stride2)
        words = size0 * count1 * count2
        start, end = isa.dma_extent(self.config, instr)
        self.stats.dram_read += words * isa.buffer_word_bytes(self.config, buffer)
        self._emit(instr, [Access(buffer, buf_addr, buf_addr + words, True),
                           Access(DRAM, start, end, False)])

    def store(self, buf_addr: int, dram_addr: int, size0: int, count1: int = 1,
              stride1: int = 0, count2: int = 1, stride2: int = 0) -> None:
        instr = isa.Store(buffer=Buffer.OBUF, buf_addr=buf_addr, dram_addr=dram_addr,
                          size0=size0, count1=count1, stride1=stride1, count2=count2,
                          stride2=stride2)
        words = size0 * count1 * count2
        start, end = isa.dma_extent(self.config, instr)
        self.stats.dram_write += words * self.config.word_bytes
        self._emit(instr, [Access(Buffer.OBUF, buf_addr, buf_addr + words, False),
                           Access(DRAM, start, end, True)])

    def compute(self, instr: Instruction, *, reads: list[tuple[Buffer, int, int]],
                writes: list[tuple[Buffer, int, int]]) -> None:
        """A compute instruction reading and writing buffer words [start, end)."""
        self._emit(instr, [Access(b, s, e, False) for b, s, e in reads]
                   + [Access(b, s, e, True) for b, s, e in writes])

    def _emit(self, instr: Instruction, accesses: list[Access]) -> None:
        code, message = isa.check(instr, self.config)
        if code is not isa.ErrorCode.NONE:
            raise AssertionError(f"code generation produced an illegal instruction: {message}")
        self.stats.instructions += 1
        self.scheduler.emit(instr, accesses)

    def load_lut(self, name: str, lut: np.ndarray | None) -> None:
        """Put a 256-entry activation table in the LUT buffer (before the op that uses it)."""
        if lut is None:
            raise ValueError(f"layer {name!r}: LUT activation without a table")
        table = np.asarray(lut, np.int8).reshape(-1)
        if table.size != 256:
            raise ValueError(f"layer {name!r}: an activation table has 256 entries, "
                             f"not {table.size}")
        words = self.config.lut_words
        blob = np.zeros(words * self.config.word_bytes, np.int8)
        blob[:256] = table
        address = self.constant(f"{name}.lut", blob.tobytes())
        self.load(Buffer.LUT, 0, address, words)
