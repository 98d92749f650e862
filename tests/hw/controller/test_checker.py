"""InstructionChecker against hw.isa.decode + hw.isa.check + the token-flag rule of
sim/functional.py, on random words around every limit, for tiny and default."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.lib import data

from hw import isa
from hw.config import preset
from hw.controller.checker import CHECK_LATENCY, InstructionChecker
from hw.controller.layouts import FetchedWord
from hw.isa import ErrorCode, Opcode, Queue
from hw.lint import lint_verilog, to_verilog
from tests.streams import collect, feed, run_sim

_NO_NEIGHBOUR = {Queue.LOAD: "prev", Queue.STORE: "next"}


def expected_check(word: int, config) -> tuple[ErrorCode, bool]:
    """(code, early) in the order the functional model finds errors."""
    try:
        instr = isa.decode(word)
    except isa.IllegalInstruction as exc:
        return exc.code, True
    if instr.OPCODE is Opcode.END:
        return ErrorCode.NONE, False
    code, _ = isa.check(instr, config)
    if code is not ErrorCode.NONE:
        return code, False
    side = _NO_NEIGHBOUR.get(instr.queue)
    if side and (getattr(instr, f"pop_{side}") or getattr(instr, f"push_{side}")):
        return ErrorCode.ILLEGAL_FIELD, False
    return ErrorCode.NONE, False


def _leaves(layout, base=0):
    for name, fld in layout:
        shape = fld.shape
        if isinstance(shape, type) and issubclass(shape, data.Struct):
            yield from _leaves(data.Layout.cast(shape), base + fld.offset)
        else:
            yield name, base + fld.offset, fld.width


def _near(rng, limit: int) -> int:
    """A value in [1, limit] biased to both ends, sometimes just past the limit."""
    pick = rng.random()
    if pick < 0.4:
        return int(rng.integers(1, min(limit, 4) + 1))
    if pick < 0.8:
        return max(1, limit - int(rng.integers(0, 3)))
    return limit + int(rng.integers(1, 3))


def _stride(rng, wb: int, dram_bytes: int) -> int:
    """A small stride mostly; sometimes one around the DRAM size, where the checker's
    narrowed stride product hands over to its "stride past the DRAM" flag."""
    if rng.random() < 0.8:
        return wb * int(rng.integers(0, 9))
    half = dram_bytes // 2 if rng.random() < 0.5 else 0
    return max(0, dram_bytes - half + wb * int(rng.integers(-2, 3)))


def _legal_fields(rng, opcode: Opcode, c) -> dict[str, int]:
    """Field values that mostly pass decode, spread over the config limits."""
    buffers = {isa.Buffer.IBUF: c.ibuf_words, isa.Buffer.WBUF: c.wbuf_words,
               isa.Buffer.PBUF: c.pbuf_words, isa.Buffer.LUT: c.lut_words,
               isa.Buffer.OBUF: c.obuf_words}
    if opcode in (Opcode.LOAD, Opcode.STORE):
        buffer = isa.Buffer.OBUF if opcode is Opcode.STORE else isa.Buffer(int(rng.integers(5)))
        wb = isa.buffer_word_bytes(c, buffer)
        size0, count1, count2 = (_near(rng, 3) for _ in range(3))
        words = size0 * count1 * count2
        top = c.dram_bytes // wb
        return {"buffer": buffer.value, "size0": size0, "count1": count1, "count2": count2,
                "buf_addr": max(0, buffers[buffer] - words + int(rng.integers(-3, 2))),
                "dram_addr": wb * max(0, top - _near(rng, 40)) if rng.random() < 0.5
                else wb * int(rng.integers(0, 64)),
                "stride1": _stride(rng, wb, c.dram_bytes),
                "stride2": _stride(rng, wb, c.dram_bytes)}
    if opcode in (Opcode.CONV, Opcode.POOL):
        kernel, stride = _near(rng, c.max_kernel), _near(rng, c.max_stride)
        groups = _near(rng, 3)
        in_w = max(1, min(1023, c.line_buffer_words // groups - int(rng.integers(-1, 2))))
        in_h, out_h, out_w = _near(rng, 4), _near(rng, 4), _near(rng, 4)
        values = {"kernel": kernel, "stride": stride, "in_h": in_h, "in_w": in_w,
                  "pad_top": int(rng.integers(0, kernel)), "pad_left": int(rng.integers(0, kernel)),
                  "out_h": out_h, "out_w": out_w,
                  "ibuf_addr": max(0, c.ibuf_words - groups * in_h * in_w
                                   + int(rng.integers(-2, 2))),
                  "obuf_addr": max(0, c.obuf_words - groups * out_h * out_w
                                   + int(rng.integers(-2, 2)))}
        if opcode is Opcode.POOL:
            kind = isa.PoolKind(int(rng.integers(3)))
            values.update(kind=kind.value, groups=groups, shift=int(rng.integers(64)))
            if kind is isa.PoolKind.GLOBAL_AVG:
                values.update(kernel=0, stride=0, pad_top=0, pad_left=0, out_h=1, out_w=1)
            return values
        count = _near(rng, c.contexts)
        window = kernel * kernel * groups
        values.update(in_groups=groups, chunk_count=count,
                      chunk_start=max(0, window - count - int(rng.integers(-1, 3))),
                      output=int(rng.integers(2)), activation=int(rng.integers(3)),
                      wbuf_addr=max(0, c.wbuf_words - count * c.columns + int(rng.integers(-2, 2))),
                      acc_addr=max(0, c.acc_words - out_h * out_w + int(rng.integers(-2, 2))),
                      # a CONV writes out_h * out_w words (a POOL groups times that)
                      obuf_addr=max(0, c.obuf_words - out_h * out_w + int(rng.integers(-2, 2))),
                      pbuf_addr=c.pbuf_words - int(rng.integers(0, 2)))
        if not values["output"]:
            values["activation"] = 0
        return values
    if opcode is Opcode.ADD:
        count = _near(rng, 8)
        return {"count": count, "activation": int(rng.integers(3)),
                "a_addr": max(0, c.ibuf_words - count + int(rng.integers(-2, 2))),
                "b_addr": int(rng.integers(0, 8)),
                "obuf_addr": max(0, c.obuf_words - count + int(rng.integers(-2, 2)))}
    return {}


def random_word(rng, config) -> int:
    """A mostly legal word near the config limits, with random token flags; a third get one
    field overwritten with an edge value, a few get reserved bits or a bad opcode."""
    opcode = Opcode(int(rng.integers(0, 6)))
    layout = data.Layout.cast(isa.LAYOUTS[opcode])
    values = _legal_fields(rng, opcode, config)
    leaves = [leaf for leaf in _leaves(layout) if leaf[0] != "opcode"]
    for name in ("pop_prev", "pop_next", "push_prev", "push_next"):
        values[name] = int(rng.random() < 0.15)
    if rng.random() < 0.3:
        name, _, width = leaves[int(rng.integers(len(leaves)))]
        edges = [0, 1, 3, (1 << width) - 1, int(rng.integers(0, 1 << min(width, 62)))]
        values[name] = edges[int(rng.integers(len(edges)))]
    word = opcode.value
    for name, offset, width in leaves:
        word |= (values.get(name, 0) & ((1 << width) - 1)) << offset
    if rng.random() < 0.03:
        word |= 1 << int(rng.integers(layout.size, isa.INSTR_BITS))
    if rng.random() < 0.03:
        word = (word & ~0xF) | int(rng.integers(6, 16))
    return word


@pytest.mark.parametrize("name,count,seed", [("tiny", 1500, 1), ("default", 600, 2),
                                              ("ulx3s-85f", 1500, 3)])
def test_checker_matches_decode_and_check(name, count, seed):
    config = preset(name)
    rng = np.random.default_rng(seed)
    words = [random_word(rng, config) for _ in range(count)]
    # Legal instructions of the seed programs' kind, so the NONE path is well covered.
    words += [isa.encode(isa.Load(buffer=isa.Buffer.WBUF, dram_addr=config.word_bytes * k,
                                  size0=k + 1, count1=2, count2=1)) for k in range(20)]
    faults = [ErrorCode.NONE] * len(words)
    words.append(0)
    faults.append(ErrorCode.DRAM_RANGE)
    got = _run(config, [{"word": w, "fault": f} for w, f in zip(words, faults)], seed)
    codes = {}
    for word, fault, out in zip(words, faults, got):
        assert out.word == word
        want = (fault, True) if fault is not ErrorCode.NONE else expected_check(word, config)
        assert (out.code, bool(out.early)) == want, hex(word)
        codes[want] = codes.get(want, 0) + 1
    # Every outcome is exercised, not only the common ones.
    assert {code for code, _ in codes} >= {
        ErrorCode.NONE, ErrorCode.ILLEGAL_OPCODE, ErrorCode.ILLEGAL_FIELD,
        ErrorCode.BUFFER_RANGE, ErrorCode.DRAM_RANGE, ErrorCode.MISALIGNED}
    assert (ErrorCode.ILLEGAL_FIELD, False) in codes and (ErrorCode.ILLEGAL_FIELD, True) in codes


@pytest.mark.parametrize("name", ["tiny", "ulx3s-85f"])
def test_checker_wide_extents(name):
    """Extents far past every buffer and strides at and past the DRAM size, where the
    checker saturates its products and narrows its stride multipliers: each word's code
    still equals decode + check."""
    config = preset(name)
    wb = config.word_bytes
    words = []
    for k in range(10, 17):
        words.append(isa.encode(isa.Load(buffer=isa.Buffer.IBUF, size0=1,
                                         count1=min(1 << k, 0xFFFF), stride1=0, count2=1)))
        words.append(isa.encode(isa.Load(buffer=isa.Buffer.IBUF, size0=3, count1=1 << (k - 2),
                                         count2=4, stride2=0)))
        side = 1 << (k // 2 + 1)
        words.append(isa.encode(isa.Pool(kind=isa.PoolKind.MAX, in_h=2, in_w=2, groups=1,
                                         kernel=1, stride=1, out_h=min(side, 1023),
                                         out_w=min(side, 1023))))
    for count in (1, 2, 3):
        for stride in (config.dram_bytes - wb, config.dram_bytes, config.dram_bytes + wb,
                       config.dram_bytes // 2, 2 * config.dram_bytes, 0xFFFFFFF8):
            words.append(isa.encode(isa.Load(buffer=isa.Buffer.WBUF, size0=1, count1=count,
                                             stride1=stride, count2=1)))
            words.append(isa.encode(isa.Store(buffer=isa.Buffer.OBUF, size0=1, count1=1,
                                              count2=count, stride2=stride)))
    got = _run(config, [{"word": w, "fault": ErrorCode.NONE} for w in words], seed=5)
    want = [expected_check(w, config) for w in words]
    assert [(out.code, bool(out.early)) for out in got] == want
    assert {code for code, _ in want} >= {ErrorCode.NONE, ErrorCode.BUFFER_RANGE,
                                          ErrorCode.DRAM_RANGE}


def _run(config, payloads, seed):
    dut = InstructionChecker(config=config)
    got = []

    async def source(ctx):
        await feed(ctx, dut.i, payloads, gaps=0.3, seed=seed)

    async def sink(ctx):
        got.extend(await collect(ctx, dut.o, len(payloads), stalls=0.3, seed=seed + 1))

    run_sim(dut, source, sink)
    return got


def test_checker_latency_and_throughput():
    config = preset("tiny")
    dut = InstructionChecker(config=config)
    word = isa.encode(isa.End())
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, FetchedWord.const({"word": word, "fault": ErrorCode.NONE}))
        for cycle in range(8):
            if ctx.get(dut.o.valid):
                seen.append(cycle)
            await ctx.tick()

    run_sim(dut, bench)
    assert seen == list(range(CHECK_LATENCY, 8))   # first out at 4, then one per cycle


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_checker_lint(name):
    lint_verilog(to_verilog(InstructionChecker(config=preset(name)), "checker"), "checker")
