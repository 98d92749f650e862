"""Race detection for programs: are conflicting accesses ordered by dependency tokens?

The hardware runs the LOAD, COMPUTE and STORE queues concurrently; only program order inside a
queue and the dependency tokens between queues order their instructions. The functional model
runs one instruction at a time, so on its own it would hide a missing token. `HazardTracker`
closes that gap with vector clocks (the FastTrack scheme): each queue has a clock, a token
carries the pusher's clock to the popper, and every buffer word and DRAM granule remembers the
epoch of its last write and of the last read by each queue. An access that conflicts with an
earlier one from another queue that does not happen-before it raises `RaceError`, naming both
instructions and the memory.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from hw.isa import Queue

__all__ = ["RaceError", "HazardTracker"]

_NQ = len(Queue)


class RaceError(RuntimeError):
    """Two instructions in different queues touch the same memory without a token between."""


class _Shadow:
    """Per-word access history of one memory: last writer (queue, epoch, instruction) and the
    last read epoch and instruction per queue. Grows on demand (DRAM is large and sparse)."""

    def __init__(self, name: str, words: int) -> None:
        self.name = name
        self.write_queue = np.full(words, -1, np.int8)
        self.write_epoch = np.zeros(words, np.int64)
        self.write_instr = np.full(words, -1, np.int64)
        self.read_epoch = np.zeros((_NQ, words), np.int64)
        self.read_instr = np.full((_NQ, words), -1, np.int64)

    def _grow(self, words: int) -> None:
        if words <= len(self.write_queue):
            return
        extra = max(words, 2 * len(self.write_queue)) - len(self.write_queue)
        self.write_queue = np.concatenate([self.write_queue, np.full(extra, -1, np.int8)])
        self.write_epoch = np.concatenate([self.write_epoch, np.zeros(extra, np.int64)])
        self.write_instr = np.concatenate([self.write_instr, np.full(extra, -1, np.int64)])
        self.read_epoch = np.concatenate([self.read_epoch, np.zeros((_NQ, extra), np.int64)], 1)
        self.read_instr = np.concatenate([self.read_instr, np.full((_NQ, extra), -1, np.int64)], 1)

    def access(self, words: np.ndarray, queue: int, clock: np.ndarray, index: int,
               write: bool) -> None:
        if words.size == 0:
            return
        self._grow(int(words.max()) + 1)
        wq = self.write_queue[words]
        unordered = (wq >= 0) & (wq != queue) & \
            (self.write_epoch[words] > clock[np.maximum(wq, 0)])
        if unordered.any():
            at = int(np.argmax(unordered))
            raise RaceError(
                f"instruction {index} ({Queue(queue).name}) {'writes' if write else 'reads'} "
                f"{self.name} word {int(words[at])} written by instruction "
                f"{int(self.write_instr[words[at]])} ({Queue(int(wq[at])).name}) with no token "
                "ordering them")
        if write:
            for other in range(_NQ):
                if other == queue:
                    continue
                late = self.read_epoch[other, words] > clock[other]
                if late.any():
                    at = int(np.argmax(late))
                    raise RaceError(
                        f"instruction {index} ({Queue(queue).name}) writes {self.name} word "
                        f"{int(words[at])} read by instruction "
                        f"{int(self.read_instr[other, words[at]])} ({Queue(other).name}) with "
                        "no token ordering them")
            self.write_queue[words] = queue
            self.write_epoch[words] = clock[queue]
            self.write_instr[words] = index
        else:
            self.read_epoch[queue, words] = clock[queue]
            self.read_instr[queue, words] = index


class HazardTracker:
    """Vector clocks of the three queues plus the shadows of every memory."""

    def __init__(self, memories: dict[str, int]) -> None:
        self.clock = np.zeros((_NQ, _NQ), np.int64)
        self.channels: dict[tuple[int, int], deque] = {}
        self.shadows = {name: _Shadow(name, words) for name, words in memories.items()}

    def pop(self, queue: Queue, source: Queue) -> None:
        """The popped token carries the clock its pusher had when it pushed."""
        sent = self.channels[(source.value, queue.value)].popleft()
        np.maximum(self.clock[queue.value], sent, out=self.clock[queue.value])

    def begin(self, queue: Queue) -> None:
        self.clock[queue.value, queue.value] += 1

    def push(self, queue: Queue, target: Queue) -> None:
        self.channels.setdefault((queue.value, target.value), deque()).append(
            self.clock[queue.value].copy())

    def access(self, memory: str, words: np.ndarray, queue: Queue, index: int, *,
               write: bool) -> None:
        self.shadows[memory].access(np.asarray(words, np.int64).reshape(-1), queue.value,
                                    self.clock[queue.value], index, write)
