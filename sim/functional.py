"""Functional model of the Systolica instruction set: the executable specification.

`FunctionalMachine` holds the machine's architectural state as NumPy arrays (DRAM bytes and
every on-chip buffer) and executes instructions with exactly the arithmetic the hardware uses.
The rounding, wrapping and saturation rules themselves live in hw/arith.py, which the compiler's
golden reference uses too; the RTL is tested against this model.

Queues and tokens are modelled as the hardware has them: a dispatcher moves instructions in
program order into the LOAD, COMPUTE and STORE queues (each `queue_depth` deep) and stops at
END; a queue's head runs once the tokens it pops are there. The model runs one instruction at a
time (first runnable of LOAD, COMPUTE, STORE), so a program whose tokens order every conflicting
access gets the same result as the parallel hardware; with `check_races` (the default) it proves
that they do, raising RaceError for any conflicting access that no token orders (sim/hazards.py).
A program whose queues all wait stops with DEADLOCK, as the hardware does.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from hw import isa
from hw.arith import activate, requantize, round_shift, saturate8, unpack_params, wrap_acc
from hw.config import AcceleratorConfig
from hw.isa import Activation, Buffer, ErrorCode, Opcode, PoolKind, Queue

from .hazards import HazardTracker, RaceError

__all__ = ["MachineError", "RaceError", "RunStats", "FunctionalMachine", "instruction_accesses"]


# ---- machine ------------------------------------------------------------------------------

class MachineError(RuntimeError):
    """The machine stopped on an error; `code` is what the status register would show."""

    def __init__(self, code: ErrorCode, index: int, message: str) -> None:
        super().__init__(f"{code.name} at instruction {index}: {message}")
        self.code = code
        self.index = index


@dataclass
class RunStats:
    """What a run did: instruction counts per opcode, array work and DMA traffic."""
    instructions: dict[str, int] = field(default_factory=dict)
    array_slots: int = 0        #: chunk-cycles issued to the array x rows x columns (MAC slots)
    conv_chunks: int = 0        #: chunks streamed through the array (one per cycle in hardware)
    dram_read_bytes: int = 0
    dram_write_bytes: int = 0


def _memory_words(c: AcceleratorConfig) -> dict[str, int]:
    """Sizes of the memories whose accesses are race-checked (DRAM in word-size granules,
    starting small: its shadow grows with the addresses a program touches)."""
    return {"IBUF": c.ibuf_words, "WBUF": c.wbuf_words, "PBUF": c.pbuf_words,
            "LUT": c.lut_words, "OBUF": c.obuf_words, "ACC": c.acc_words, "DRAM": 1 << 16}


def _span(start: int, count: int) -> np.ndarray:
    return np.arange(start, start + count, dtype=np.int64)


def dma_word_offsets(instr: isa.Instruction, word_bytes: int) -> np.ndarray:
    """DRAM byte address of the first byte of every word of a DMA pattern, in buffer order."""
    i2 = np.arange(instr.count2, dtype=np.int64)[:, None, None] * instr.stride2
    i1 = np.arange(instr.count1, dtype=np.int64)[None, :, None] * instr.stride1
    i0 = np.arange(instr.size0, dtype=np.int64)[None, None, :] * word_bytes
    return (instr.dram_addr + i2 + i1 + i0).reshape(-1)


def instruction_accesses(instr: isa.Instruction, c: AcceleratorConfig
                         ) -> list[tuple[str, np.ndarray, bool]]:
    """(memory, word indices, is_write) of everything an instruction reads and writes, as the
    hardware does it: a pass reads its whole input tile, DRAM in granules of one word."""
    op = instr.OPCODE
    if op in (Opcode.LOAD, Opcode.STORE):
        wb = isa.buffer_word_bytes(c, instr.buffer)
        starts = dma_word_offsets(instr, wb)
        granules = (starts[:, None] + np.arange(0, wb, c.word_bytes)[None, :]) // c.word_bytes
        buf = _span(instr.buf_addr, len(starts))
        if op is Opcode.LOAD:
            return [("DRAM", granules, False), (instr.buffer.name, buf, True)]
        return [(instr.buffer.name, buf, False), ("DRAM", granules, True)]
    uses_lut = getattr(instr, "activation", Activation.NONE) is Activation.LUT
    out: list[tuple[str, np.ndarray, bool]] = []
    if uses_lut:
        out.append(("LUT", _span(0, c.lut_words), False))
    if op is Opcode.CONV:
        pixels = instr.out_h * instr.out_w
        out += [("IBUF", _span(instr.ibuf_addr, instr.in_groups * instr.in_h * instr.in_w), False),
                ("WBUF", _span(instr.wbuf_addr, instr.chunk_count * c.columns), False)]
        if instr.accumulate:
            out.append(("ACC", _span(instr.acc_addr, pixels), False))
        if instr.output:
            out += [("PBUF", _span(instr.pbuf_addr, 1), False),
                    ("OBUF", _span(instr.obuf_addr, pixels), True)]
        else:
            out.append(("ACC", _span(instr.acc_addr, pixels), True))
    elif op is Opcode.POOL:
        out += [("IBUF", _span(instr.ibuf_addr, instr.groups * instr.in_h * instr.in_w), False),
                ("OBUF", _span(instr.obuf_addr, instr.groups * instr.out_h * instr.out_w), True)]
    elif op is Opcode.ADD:
        out += [("IBUF", _span(instr.a_addr, instr.count), False),
                ("IBUF", _span(instr.b_addr, instr.count), False),
                ("OBUF", _span(instr.obuf_addr, instr.count), True)]
    return out


_PAIR = {  # (queue, "prev"/"next") -> neighbouring queue
    (Queue.LOAD, "next"): Queue.COMPUTE, (Queue.COMPUTE, "prev"): Queue.LOAD,
    (Queue.COMPUTE, "next"): Queue.STORE, (Queue.STORE, "prev"): Queue.COMPUTE,
}


class FunctionalMachine:
    """Architectural state plus an instruction interpreter (see the module docstring)."""

    def __init__(self, config: AcceleratorConfig, dram: bytes | bytearray | np.ndarray = b""):
        self.config = c = config
        n = c.lanes
        self.dram = np.zeros(c.dram_bytes, np.uint8)
        init = np.frombuffer(bytes(dram), np.uint8) if not isinstance(dram, np.ndarray) else dram
        if len(init) > c.dram_bytes:
            raise ValueError(f"DRAM image of {len(init)} bytes exceeds dram_bytes {c.dram_bytes}")
        self.dram[:len(init)] = init
        self.buffers: dict[Buffer, np.ndarray] = {
            Buffer.IBUF: np.zeros((c.ibuf_words, n), np.int8),
            Buffer.WBUF: np.zeros((c.wbuf_words, n), np.int8),
            Buffer.PBUF: np.zeros((c.pbuf_words, c.pbuf_word_bytes), np.uint8),
            Buffer.LUT: np.zeros((c.lut_words, n), np.int8),
            Buffer.OBUF: np.zeros((c.obuf_words, c.columns), np.int8),
        }
        self.acc = np.zeros((c.acc_words, c.columns), np.int64)
        self.stats = RunStats()

    # ---- views ----------------------------------------------------------------------------
    @property
    def lut(self) -> np.ndarray:
        return self.buffers[Buffer.LUT].reshape(-1)[:256]

    def read_dram(self, address: int, length: int) -> bytes:
        return self.dram[address:address + length].tobytes()

    def write_dram(self, address: int, data: bytes) -> None:
        self.dram[address:address + len(data)] = np.frombuffer(data, np.uint8)

    # ---- running --------------------------------------------------------------------------
    def run(self, program: list[isa.Instruction], *, check_races: bool = True) -> RunStats:
        """Run to END. Raises MachineError (with the hardware's error code) on a bad
        instruction, a token overflow or a deadlock, and RaceError on an unsynchronised
        access; the state is left as at the stop."""
        c = self.config
        tracker = HazardTracker(_memory_words(c)) if check_races else None
        queues = {q: deque() for q in Queue}
        tokens = {pair: 0 for pair in _PAIR.items()}
        pc, ended = 0, False

        def can_pop(q: Queue, instr: isa.Instruction) -> bool:
            for side in ("prev", "next"):
                if getattr(instr, f"pop_{side}") and tokens[self._incoming(q, side)] == 0:
                    return False
            return True

        while True:
            # Dispatch in program order until a queue is full or END.
            while not ended:
                if pc >= len(program):
                    raise MachineError(ErrorCode.DRAM_RANGE, pc,
                                       "the program ran past its last word without END")
                instr = program[pc]
                if instr.OPCODE is Opcode.END:
                    ended = True
                    break
                q = instr.queue
                if len(queues[q]) >= c.queue_depth:
                    break
                code, msg = isa.check(instr, c)
                if code is not ErrorCode.NONE:
                    raise MachineError(code, pc, msg)
                for side in ("prev", "next"):
                    for kind in ("pop", "push"):
                        if getattr(instr, f"{kind}_{side}") and (q, side) not in _PAIR:
                            raise MachineError(ErrorCode.ILLEGAL_FIELD, pc,
                                               f"{instr.OPCODE.name} in the {q.name} queue has "
                                               f"no {side} queue to {kind} a token")
                queues[q].append((pc, instr))
                pc += 1
            runnable = next((q for q in Queue if queues[q] and can_pop(q, queues[q][0][1])), None)
            if runnable is None:
                if ended and not any(queues.values()):
                    return self.stats
                waiting = ", ".join(f"{q.name} #{queues[q][0][0]}" for q in Queue if queues[q])
                raise MachineError(ErrorCode.DEADLOCK, pc,
                                   f"every queue waits for a token ({waiting})")
            index, instr = queues[runnable].popleft()
            for side in ("prev", "next"):
                if getattr(instr, f"pop_{side}"):
                    tokens[self._incoming(runnable, side)] -= 1
                    if tracker:
                        tracker.pop(runnable, _PAIR[(runnable, side)])
            if tracker:
                tracker.begin(runnable)
                for memory, words, write in instruction_accesses(instr, c):
                    tracker.access(memory, words, runnable, index, write=write)
            self.execute(instr)
            for side in ("prev", "next"):
                if getattr(instr, f"push_{side}"):
                    key = ((runnable, side), _PAIR[(runnable, side)])
                    if tokens[key] >= c.token_depth:
                        raise MachineError(ErrorCode.TOKEN_OVERFLOW, index,
                                           f"{runnable.name}->{key[1].name} already holds "
                                           f"{c.token_depth} tokens")
                    tokens[key] += 1
                    if tracker:
                        tracker.push(runnable, key[1])

    @staticmethod
    def _incoming(q: Queue, side: str):
        """The token counter that queue `q` pops from its `side` neighbour."""
        other = _PAIR[(q, side)]
        return ((other, "next" if side == "prev" else "prev"), q)

    def execute(self, instr: isa.Instruction) -> None:
        """Execute one (already checked) instruction on the state."""
        name = instr.OPCODE.name
        self.stats.instructions[name] = self.stats.instructions.get(name, 0) + 1
        {Opcode.LOAD: self._load, Opcode.STORE: self._store, Opcode.CONV: self._conv,
         Opcode.POOL: self._pool, Opcode.ADD: self._add}[instr.OPCODE](instr)

    # ---- DMA ------------------------------------------------------------------------------
    def _dram_offsets(self, instr: isa.Instruction, word_bytes: int) -> np.ndarray:
        """Byte addresses [words, word_bytes] of a DMA pattern, in buffer order."""
        starts = dma_word_offsets(instr, word_bytes)
        return starts[:, None] + np.arange(word_bytes, dtype=np.int64)[None, :]

    def _load(self, instr: isa.Instruction) -> None:
        buf = self.buffers[instr.buffer]
        offsets = self._dram_offsets(instr, buf.shape[1] * buf.itemsize)
        words = self.dram[offsets].view(buf.dtype)
        buf[instr.buf_addr:instr.buf_addr + len(words)] = words
        self.stats.dram_read_bytes += offsets.size

    def _store(self, instr: isa.Instruction) -> None:
        buf = self.buffers[instr.buffer]
        offsets = self._dram_offsets(instr, buf.shape[1])
        words = buf[instr.buf_addr:instr.buf_addr + len(offsets)]
        self.dram[offsets] = words.view(np.uint8)
        self.stats.dram_write_bytes += offsets.size

    # ---- compute --------------------------------------------------------------------------
    def window_addresses(self, *, base: int, in_h: int, in_w: int, groups: int, stride: int,
                         pad_top: int, pad_left: int, out_h: int, out_w: int, ky: np.ndarray,
                         kx: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input-buffer word address [pixels, taps] of window taps (ky, kx, group) for every
        output pixel in raster order, and whether the tap lies inside the tile (else zero)."""
        oy, ox = np.divmod(np.arange(out_h * out_w, dtype=np.int64), out_w)
        iy = oy[:, None] * stride - pad_top + ky[None, :]
        ix = ox[:, None] * stride - pad_left + kx[None, :]
        inside = (iy >= 0) & (iy < in_h) & (ix >= 0) & (ix < in_w)
        addr = base + (group[None, :] * in_h + iy) * in_w + ix
        return np.where(inside, addr, 0), inside

    def _conv(self, instr: isa.Instruction) -> None:
        c = self.config
        k = np.arange(instr.chunk_start, instr.chunk_start + instr.chunk_count, dtype=np.int64)
        ky, rest = np.divmod(k, instr.kernel * instr.in_groups)
        kx, group = np.divmod(rest, instr.in_groups)
        addr, inside = self.window_addresses(
            base=instr.ibuf_addr, in_h=instr.in_h, in_w=instr.in_w, groups=instr.in_groups,
            stride=instr.stride, pad_top=instr.pad_top, pad_left=instr.pad_left,
            out_h=instr.out_h, out_w=instr.out_w, ky=ky, kx=kx, group=group)
        chunks = np.where(inside[..., None], self.buffers[Buffer.IBUF][addr], 0)   # [P, d, r]
        weights = self.buffers[Buffer.WBUF][
            instr.wbuf_addr:instr.wbuf_addr + instr.chunk_count * c.columns
        ].reshape(instr.chunk_count, c.columns, c.rows)                               # [d, col, r]
        partial = np.einsum("pdr,dcr->pc", chunks.astype(np.int64), weights.astype(np.int64))
        pixels = instr.out_h * instr.out_w
        acc_slice = slice(instr.acc_addr, instr.acc_addr + pixels)
        total = partial + (self.acc[acc_slice] if instr.accumulate else 0)
        total = wrap_acc(total, c.acc_bits)
        if instr.output:
            bias, mult, shift = unpack_params(self.buffers[Buffer.PBUF][instr.pbuf_addr])
            y = activate(requantize(total, bias, mult, shift), instr.activation, self.lut)
            self.buffers[Buffer.OBUF][instr.obuf_addr:instr.obuf_addr + pixels] = y
        else:
            self.acc[acc_slice] = total
        self.stats.conv_chunks += pixels * instr.chunk_count
        self.stats.array_slots += pixels * instr.chunk_count * c.rows * c.columns

    def _pool(self, instr: isa.Instruction) -> None:
        ibuf, obuf = self.buffers[Buffer.IBUF], self.buffers[Buffer.OBUF]
        plane_in, plane_out = instr.in_h * instr.in_w, instr.out_h * instr.out_w
        for g in range(instr.groups):
            base = instr.ibuf_addr + g * plane_in
            if instr.kind is PoolKind.GLOBAL_AVG:
                r = ibuf[base:base + plane_in].astype(np.int64).sum(axis=0, keepdims=True)
            else:
                ky, kx = np.divmod(np.arange(instr.kernel ** 2, dtype=np.int64), instr.kernel)
                addr, inside = self.window_addresses(
                    base=base, in_h=instr.in_h, in_w=instr.in_w, groups=1, stride=instr.stride,
                    pad_top=instr.pad_top, pad_left=instr.pad_left, out_h=instr.out_h,
                    out_w=instr.out_w, ky=ky, kx=kx, group=np.zeros_like(ky))
                taps = ibuf[addr].astype(np.int64)                        # [P, K*K, lanes]
                if instr.kind is PoolKind.MAX:   # outside taps never win; empty window -> -128
                    r = np.where(inside[..., None], taps, -128).max(axis=1)
                else:                            # outside taps count as zero
                    r = np.where(inside[..., None], taps, 0).sum(axis=1)
            y = saturate8(round_shift(r * instr.mult, instr.shift))
            out = instr.obuf_addr + g * plane_out
            obuf[out:out + plane_out] = y

    def _add(self, instr: isa.Instruction) -> None:
        ibuf = self.buffers[Buffer.IBUF]
        a = ibuf[instr.a_addr:instr.a_addr + instr.count].astype(np.int64)
        b = ibuf[instr.b_addr:instr.b_addr + instr.count].astype(np.int64)
        y = saturate8(round_shift(a * instr.mult_a + b * instr.mult_b, instr.shift))
        self.buffers[Buffer.OBUF][instr.obuf_addr:instr.obuf_addr + instr.count] = \
            activate(y, instr.activation, self.lut)
