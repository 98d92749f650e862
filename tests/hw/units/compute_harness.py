"""The compute unit wired to real memories, for tests against the functional model."""

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import connect

from hw.compute.accumulator import acc_word_layout
from hw.isa import Buffer
from hw.units.compute import ComputeUnit


def pack_words(array: np.ndarray) -> list[int]:
    """Rows of bytes (any int dtype viewed as uint8) -> little-endian integers."""
    raw = np.ascontiguousarray(array).view(np.uint8).reshape(len(array), -1)
    return [int.from_bytes(row.tobytes(), "little") for row in raw]


def unpack_words(values, width_bytes: int, dtype=np.int8) -> np.ndarray:
    raw = b"".join(int(v).to_bytes(width_bytes, "little") for v in values)
    return np.frombuffer(raw, dtype).reshape(len(values), -1)


class ComputeHarness(wiring.Component):
    def __init__(self, config, buffers: dict):
        self.config = c = config
        self.unit = ComputeUnit(config=c)
        lanes = 8 * c.word_bytes
        self.ibuf = memory.Memory(shape=lanes, depth=c.ibuf_words,
                                  init=pack_words(buffers[Buffer.IBUF]))
        self.wbuf = memory.Memory(shape=lanes, depth=c.wbuf_words,
                                  init=pack_words(buffers[Buffer.WBUF]))
        self.pbuf = memory.Memory(shape=8 * c.pbuf_word_bytes, depth=c.pbuf_words,
                                  init=pack_words(buffers[Buffer.PBUF]))
        self.acc = memory.Memory(shape=acc_word_layout(c), depth=c.acc_words, init=[])
        self.obuf = memory.Memory(shape=lanes, depth=c.obuf_words, init=[])
        members = self.unit.signature.members
        super().__init__({"instr": members["instr"], "done": members["done"],
                          "lut": members["lut"]})

    def elaborate(self, platform):
        m = Module()
        u = self.unit
        m.submodules.unit = u
        for name in ("ibuf", "wbuf", "pbuf", "acc", "obuf"):
            m.submodules[name] = getattr(self, name)
        connect(m, u.ibuf_rd, self.ibuf.read_port())
        connect(m, u.wbuf_rd, self.wbuf.read_port())
        connect(m, u.pbuf_rd, self.pbuf.read_port())
        acc_wr = self.acc.write_port()
        connect(m, u.acc_wr, acc_wr)
        connect(m, u.acc_rd, self.acc.read_port(transparent_for=(acc_wr,)))
        connect(m, u.obuf_wr, self.obuf.write_port())
        connect(m, wiring.flipped(self.instr), u.instr)
        connect(m, wiring.flipped(self.lut), u.lut)
        m.d.comb += self.done.eq(u.done)
        return m
