"""Stream payloads between the controller's stages: fetch -> check -> dispatch -> queues.

Instruction indices (program counter values) are `INDEX_BITS` wide: the same width as the
program-length CSR, so any program the host can describe can be indexed.
"""

from amaranth.lib import data

from ..isa import INSTR_BITS, ErrorCode

__all__ = ["INDEX_BITS", "ADDR_BITS", "FetchRequest", "FetchedWord", "CheckedWord", "QueueEntry"]

INDEX_BITS = 32
ADDR_BITS = 32


class FetchRequest(data.Struct):
    """A read of `words` consecutive 256-bit instruction words starting at byte `address`
    (always a multiple of 32 bytes, never beyond the configured DRAM)."""
    address: ADDR_BITS
    words: 16


class FetchedWord(data.Struct):
    """One instruction word in program order, or (`fault` != NONE, `word` = 0) the marker the
    fetcher puts after the last word it may fetch: the program ran past its length or out of
    DRAM (DRAM_RANGE), or its address was not word-aligned (MISALIGNED)."""
    word: INSTR_BITS
    fault: ErrorCode


class CheckedWord(data.Struct):
    """An instruction word with the error it raises at dispatch (`code`). `early` errors
    (fetch faults and everything `hw.isa.decode` rejects) are raised as soon as the dispatcher
    reaches the word; the others (`hw.isa.check` and the token flags) only once the target
    queue has room, which is when sim/functional.py checks them."""
    word: INSTR_BITS
    code: ErrorCode
    early: 1


class QueueEntry(data.Struct):
    """An instruction in a queue, with its program index (reported on TOKEN_OVERFLOW)."""
    word: INSTR_BITS
    index: INDEX_BITS
