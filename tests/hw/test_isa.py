"""The instruction set: encode/decode round trips, illegal words, static and config checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.lib import data, enum

from hw import isa
from hw.config import PRESETS
from hw.isa import (INSTR_BITS, INSTR_BYTES, LAYOUTS, Activation, Add, Buffer, Conv, End,
                    ErrorCode, IllegalInstruction, Load, Opcode, Pool, PoolKind, Store, check,
                    decode, decode_program, encode, encode_program)

RECORDS = {Opcode.END: End, Opcode.LOAD: Load, Opcode.STORE: Store, Opcode.CONV: Conv,
           Opcode.POOL: Pool, Opcode.ADD: Add}
FLAGS = ("pop_prev", "pop_next", "push_prev", "push_next")
TINY, DEFAULT = PRESETS["tiny"], PRESETS["default"]


def leaves(layout, prefix=""):
    """(dotted name, shape, offset, width) of every leaf of an Amaranth layout."""
    for name, field in data.Layout.cast(layout):
        if isinstance(field.shape, type) and issubclass(field.shape, data.Struct):
            yield from ((prefix + name + "." + n, s, field.offset + o, w)
                        for n, s, o, w in leaves(field.shape))
        else:
            yield prefix + name, field.shape, field.offset, field.width


def random_instruction(opcode: Opcode, rng: np.random.Generator) -> isa.Instruction:
    """A random legal instruction: every field random in its width, then the static rules
    (documented in docs/isa.md) applied."""
    values = {}
    for name, shape, _, width in leaves(LAYOUTS[opcode]):
        if name.startswith("header."):
            continue
        if isinstance(shape, type) and issubclass(shape, enum.Enum):
            values[name] = list(shape)[rng.integers(len(shape))]
        elif getattr(shape, "signed", False):
            values[name] = int(rng.integers(-(1 << (width - 1)), 1 << (width - 1)))
        else:
            values[name] = int(rng.integers(0, 1 << width))
    values.update({f: bool(rng.integers(2)) for f in FLAGS})
    v = values
    for name in ("size0", "count1", "count2", "in_h", "in_w", "in_groups", "groups", "out_h",
                 "out_w", "count"):
        if name in v:
            v[name] = max(v[name], 1)
    if opcode is Opcode.STORE:
        v["buffer"] = Buffer.OBUF
    if opcode in (Opcode.CONV, Opcode.POOL):
        v["kernel"] = int(rng.integers(1, 16))
        v["stride"] = int(rng.integers(1, 8))
        v["pad_top"] = int(rng.integers(0, v["kernel"]))
        v["pad_left"] = int(rng.integers(0, v["kernel"]))
    if opcode is Opcode.CONV:
        window = v["kernel"] ** 2 * v["in_groups"]
        v["chunk_count"] = int(rng.integers(1, min(127, window) + 1))
        v["chunk_start"] = int(rng.integers(0, window - v["chunk_count"] + 1))
        if not v["output"]:
            v["activation"] = Activation.NONE
    if opcode is Opcode.POOL and v["kind"] is PoolKind.GLOBAL_AVG:
        v.update(kernel=0, stride=0, pad_top=0, pad_left=0, out_h=1, out_w=1)
    return RECORDS[opcode](**v)


def conv(**changes) -> Conv:
    fields = dict(in_h=8, in_w=8, in_groups=1, kernel=3, stride=1, out_h=6, out_w=6,
                  chunk_count=9)
    return Conv(**{**fields, **changes})


def pool(**changes) -> Pool:
    fields = dict(kind=PoolKind.MAX, in_h=8, in_w=8, groups=1, kernel=2, stride=2, out_h=4,
                  out_w=4, mult=1)
    return Pool(**{**fields, **changes})


def load(**changes) -> Load:
    return Load(**{**dict(buffer=Buffer.IBUF, size0=4, count1=2, count2=1), **changes})


def illegal(field: str, fn, *args, **kwargs) -> IllegalInstruction:
    with pytest.raises(IllegalInstruction) as info:
        fn(*args, **kwargs)
    assert info.value.field == field, (info.value.field, str(info.value))
    return info.value


# ---- layouts and round trips ---------------------------------------------------------------

@pytest.mark.parametrize("opcode", list(Opcode))
def test_layout_fits_one_word(opcode):
    layout = data.Layout.cast(LAYOUTS[opcode])
    assert layout.size <= INSTR_BITS == 8 * INSTR_BYTES
    names = [n for n, *_ in leaves(layout)]
    assert names[:5] == ["header.opcode", *(f"header.{f}" for f in FLAGS)]
    # The header is the low 8 bits of every instruction.
    assert [o for n, _, o, _ in leaves(layout) if n.startswith("header.")] == [0, 4, 5, 6, 7]


@pytest.mark.parametrize("opcode", list(Opcode))
def test_round_trip_random_fields(opcode):
    rng = np.random.default_rng(1000 + opcode.value)
    layout = data.Layout.cast(LAYOUTS[opcode])
    for _ in range(200):
        instr = random_instruction(opcode, rng)
        word = encode(instr)
        assert 0 <= word < 1 << layout.size
        assert decode(word) == instr
        assert encode(decode(word)) == word
        # The RTL sees the word through the Amaranth layout: every field must sit there.
        view = layout.from_bits(word)
        assert view.header.opcode == opcode
        for name, *_ in leaves(layout):
            if name == "header.opcode":
                continue
            got = view
            for part in name.split("."):
                got = getattr(got, part)
            want = getattr(instr, name.removeprefix("header."))
            assert got == (int(want) if isinstance(want, bool) else want), name


def test_encode_known_word():
    # opcode 3 in bits 0-3, push_next bit 7, then accumulate (bit 8), output (bit 9), ...
    word = encode(conv(push_next=True, accumulate=1))
    assert word & 0xFF == 0x83 and word >> 8 & 1 == 1
    assert encode(End()) == 0


def test_instruction_properties():
    assert conv().opcode is Opcode.CONV and conv().queue is isa.Queue.COMPUTE
    assert load().queue is isa.Queue.LOAD and Store(buffer=Buffer.OBUF, size0=1, count1=1,
                                                    count2=1).queue is isa.Queue.STORE
    assert End().queue is None and conv().encode() == encode(conv())


# ---- illegal words -------------------------------------------------------------------------

@pytest.mark.parametrize("opcode", list(Opcode))
def test_reserved_bits_rejected(opcode):
    rng = np.random.default_rng(2000 + opcode.value)
    size = data.Layout.cast(LAYOUTS[opcode]).size
    word = encode(random_instruction(opcode, rng))
    for bit in [size, INSTR_BITS - 1, *rng.integers(size, INSTR_BITS, 8)]:
        err = illegal("reserved", decode, word | 1 << int(bit))
        assert err.code is ErrorCode.ILLEGAL_FIELD


@pytest.mark.parametrize("raw", range(len(Opcode), 16))
def test_bad_opcode(raw):
    err = illegal("opcode", decode, raw | 0xF0)
    assert err.code is ErrorCode.ILLEGAL_OPCODE
    assert f"opcode {raw}" in str(err)


@pytest.mark.parametrize("word", [-1, 1 << INSTR_BITS])
def test_word_out_of_range(word):
    illegal("word", decode, word)


def _set_field(word: int, opcode: Opcode, name: str, value: int) -> int:
    (offset, width), = [(o, w) for n, _, o, w in leaves(LAYOUTS[opcode]) if n == name]
    return word & ~(((1 << width) - 1) << offset) | value << offset


@pytest.mark.parametrize("opcode, name, raw", [
    (Opcode.LOAD, "buffer", 5), (Opcode.LOAD, "buffer", 7), (Opcode.CONV, "activation", 3),
    (Opcode.ADD, "activation", 3), (Opcode.POOL, "kind", 3),
])
def test_bad_enum_value(opcode, name, raw):
    base = {Opcode.LOAD: load(), Opcode.CONV: conv(), Opcode.ADD: Add(count=1),
            Opcode.POOL: pool()}[opcode]
    err = illegal(name, decode, _set_field(encode(base), opcode, name, raw))
    assert err.code is ErrorCode.ILLEGAL_FIELD


@pytest.mark.parametrize("name, raw", [("kernel", 0), ("in_h", 0), ("pad_top", 3),
                                       ("chunk_count", 10)])
def test_decode_applies_static_rules(name, raw):
    illegal(name, decode, _set_field(encode(conv()), Opcode.CONV, name, raw))


# ---- records: field values and static rules -------------------------------------------------

@pytest.mark.parametrize("make, name, bad", [
    (conv, "in_h", 1024), (conv, "kernel", 16), (conv, "stride", 8), (conv, "chunk_start", -1),
    (conv, "accumulate", 2), (conv, "accumulate", True), (conv, "in_w", 3.0),
    (conv, "activation", 1), (load, "buffer", 0), (load, "dram_addr", 1 << 32),
    (pool, "mult", 1 << 15), (pool, "mult", -(1 << 15) - 1), (pool, "shift", 64),
    (pool, "kind", Activation.NONE),
])
def test_field_values(make, name, bad):
    illegal(name, make, **{name: bad})


def test_signed_field_limits_accepted():
    assert decode(encode(pool(mult=-(1 << 15)))).mult == -(1 << 15)
    assert decode(encode(pool(mult=(1 << 15) - 1))).mult == (1 << 15) - 1


@pytest.mark.parametrize("make, name", [
    (load, "size0"), (load, "count1"), (load, "count2"), (conv, "in_h"), (conv, "in_w"),
    (conv, "in_groups"), (conv, "kernel"), (conv, "stride"), (conv, "out_h"), (conv, "out_w"),
    (conv, "chunk_count"), (pool, "in_h"), (pool, "groups"), (pool, "kernel"), (pool, "stride"),
    (pool, "out_w"), (lambda **kw: Add(**{"count": 1, **kw}), "count"),
])
def test_zero_sizes(make, name):
    err = illegal(name, make, **{name: 0})
    assert "at least 1" in str(err)


@pytest.mark.parametrize("make", [conv, pool])
@pytest.mark.parametrize("pad", ["pad_top", "pad_left"])
def test_pad_must_be_below_kernel(make, pad):
    make(kernel=3, **{pad: 2})
    illegal(pad, make, kernel=3, **{pad: 3})


def test_chunk_range_within_window():
    conv(kernel=3, in_groups=2, chunk_start=10, chunk_count=8)          # 18 chunks: [10, 18)
    illegal("chunk_count", conv, kernel=3, in_groups=2, chunk_start=10, chunk_count=9)
    illegal("chunk_count", conv, kernel=1, in_groups=1, chunk_start=1, chunk_count=1)


@pytest.mark.parametrize("buffer", [b for b in Buffer if b is not Buffer.OBUF])
def test_store_reads_only_the_output_buffer(buffer):
    illegal("buffer", Store, buffer=buffer, size0=1, count1=1, count2=1)


@pytest.mark.parametrize("name, value", [("kernel", 2), ("stride", 1), ("pad_top", 1),
                                         ("pad_left", 1), ("out_h", 2), ("out_w", 2)])
def test_global_avg_fields(name, value):
    fields = dict(kind=PoolKind.GLOBAL_AVG, in_h=4, in_w=4, groups=1, kernel=0, stride=0,
                  out_h=1, out_w=1)
    Pool(**fields)
    illegal(name, Pool, **{**fields, name: value})


@pytest.mark.parametrize("activation", [Activation.RELU, Activation.LUT])
def test_activation_needs_output(activation):
    conv(output=1, activation=activation)
    illegal("activation", conv, output=0, activation=activation)


# ---- configuration-dependent checks --------------------------------------------------------

@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
def test_legal_instructions_pass_check(config):
    for instr in [conv(), pool(), Add(count=4), load(), End(),
                  Store(buffer=Buffer.OBUF, size0=2, count1=3, count2=2,
                        stride1=4 * config.word_bytes, stride2=16 * config.word_bytes)]:
        assert check(instr, config) == (ErrorCode.NONE, "")


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
def test_check_dma(config):
    wb = config.word_bytes
    # Alignment: addresses and strides are whole buffer words (parameter words for PBUF).
    assert check(load(dram_addr=wb + 1), config)[0] is ErrorCode.MISALIGNED
    assert check(load(stride1=wb // 2), config)[0] is ErrorCode.MISALIGNED
    assert check(load(count2=2, stride2=3), config)[0] is ErrorCode.MISALIGNED
    assert check(load(buffer=Buffer.PBUF, dram_addr=wb), config)[0] is ErrorCode.MISALIGNED
    assert check(load(buffer=Buffer.PBUF, dram_addr=config.pbuf_word_bytes, size0=1),
                 config)[0] is ErrorCode.NONE
    # DRAM range: the last byte of the pattern must lie inside the DRAM.
    end = config.dram_bytes
    assert check(load(dram_addr=end - 8 * wb, size0=8, count1=1), config)[0] is ErrorCode.NONE
    assert check(load(dram_addr=end - 8 * wb, size0=9, count1=1), config)[0] \
        is ErrorCode.DRAM_RANGE
    assert check(load(size0=1, count1=2, stride1=end), config)[0] is ErrorCode.DRAM_RANGE
    assert check(load(size0=1, count1=1, count2=3, stride2=end // 2), config)[0] \
        is ErrorCode.DRAM_RANGE
    # Buffer range: dense buffer words [buf_addr, buf_addr + size0*count1*count2).
    for buffer, words in [(Buffer.IBUF, config.ibuf_words), (Buffer.WBUF, config.wbuf_words),
                          (Buffer.PBUF, config.pbuf_words), (Buffer.LUT, config.lut_words),
                          (Buffer.OBUF, config.obuf_words)]:
        wbytes = config.pbuf_word_bytes if buffer is Buffer.PBUF else wb
        fits = load(buffer=buffer, buf_addr=words - 2, size0=1, count1=2, stride1=wbytes)
        assert check(fits, config)[0] is ErrorCode.NONE
        over = load(buffer=buffer, buf_addr=words - 2, size0=1, count1=3, stride1=wbytes)
        code, msg = check(over, config)
        assert code is ErrorCode.BUFFER_RANGE and buffer.name in msg


def test_check_order():
    # Misaligned and out of DRAM and out of buffer: alignment is reported first, then DRAM.
    bad = load(dram_addr=TINY.dram_bytes + 1, buf_addr=TINY.ibuf_words)
    assert check(bad, TINY)[0] is ErrorCode.MISALIGNED
    bad = load(dram_addr=TINY.dram_bytes, buf_addr=TINY.ibuf_words)
    assert check(bad, TINY)[0] is ErrorCode.DRAM_RANGE
    # A field beyond the config is reported before a buffer range.
    assert check(conv(kernel=13, in_h=13, out_h=1, ibuf_addr=TINY.ibuf_words - 1,
                      chunk_count=1), TINY)[0] is ErrorCode.ILLEGAL_FIELD


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
def test_check_conv_limits(config):
    k = config.max_kernel
    assert check(conv(kernel=k, in_h=k, in_w=k, out_h=1, out_w=1), config)[0] is ErrorCode.NONE
    code, msg = check(conv(kernel=k + 1, in_h=k + 1, in_w=k + 1, out_h=1, out_w=1), config)
    assert code is ErrorCode.ILLEGAL_FIELD and "kernel" in msg
    code, msg = check(conv(stride=config.max_stride + 1, out_h=1, out_w=1), config)
    assert code is ErrorCode.ILLEGAL_FIELD and "stride" in msg
    chunks = config.contexts + 1
    code, msg = check(conv(kernel=5, in_h=5, in_w=5, out_h=1, out_w=1, chunk_count=chunks),
                      config)
    assert code is ErrorCode.ILLEGAL_FIELD and "chunk_count" in msg
    # The line buffer holds one tile row of every group: in_w * in_groups words.
    row = config.line_buffer_words
    assert check(conv(in_w=row, in_h=3, out_w=row - 2, out_h=1), config)[0] is ErrorCode.NONE
    code, msg = check(conv(in_w=row // 2 + 1, in_groups=2, in_h=3, out_w=1, out_h=1), config)
    assert code is ErrorCode.ILLEGAL_FIELD and "line buffer" in msg


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
def test_check_conv_buffers(config):
    c = config
    cases = {  # buffer name in the message -> instruction one word too far
        "IBUF": conv(ibuf_addr=c.ibuf_words - 63),
        "WBUF": conv(wbuf_addr=c.wbuf_words - 9 * c.columns + 1),
        "ACC": conv(acc_addr=c.acc_words - 35),
        "OBUF": conv(output=1, obuf_addr=c.obuf_words - 35),
        "PBUF": conv(output=1, pbuf_addr=c.pbuf_words),
    }
    for name, instr in cases.items():
        code, msg = check(instr, c)
        assert code is ErrorCode.BUFFER_RANGE and name in msg, (name, msg)
        fixed = dataclasses.replace(instr, **{f: getattr(instr, f) - 1 for f in (
            "ibuf_addr", "wbuf_addr", "acc_addr", "obuf_addr", "pbuf_addr") if getattr(instr, f)})
        assert check(fixed, c)[0] is ErrorCode.NONE, name
    # Without output the output and parameter buffers are not touched.
    assert check(conv(obuf_addr=c.obuf_words - 1, pbuf_addr=c.pbuf_words), c)[0] \
        is ErrorCode.NONE


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
def test_check_pool_and_add(config):
    c = config
    code, msg = check(pool(kernel=c.max_kernel + 1), c)
    assert code is ErrorCode.ILLEGAL_FIELD and "kernel" in msg
    code, msg = check(pool(stride=c.max_stride + 1), c)
    assert code is ErrorCode.ILLEGAL_FIELD and "stride" in msg
    code, msg = check(pool(in_w=c.line_buffer_words + 1), c)
    assert code is ErrorCode.ILLEGAL_FIELD and "line buffer" in msg
    assert check(pool(groups=2, ibuf_addr=c.ibuf_words - 128), c)[0] is ErrorCode.NONE
    assert check(pool(groups=2, ibuf_addr=c.ibuf_words - 127), c)[0] is ErrorCode.BUFFER_RANGE
    assert check(pool(groups=2, obuf_addr=c.obuf_words - 31), c)[0] is ErrorCode.BUFFER_RANGE
    # Global average pooling reads the whole tile: no line-buffer limit on its width.
    gap = Pool(kind=PoolKind.GLOBAL_AVG, in_h=1, in_w=c.line_buffer_words + 1, groups=1,
               out_h=1, out_w=1)
    assert check(gap, c)[0] is ErrorCode.NONE
    for name in ("a_addr", "b_addr", "obuf_addr"):
        limit = c.obuf_words if name == "obuf_addr" else c.ibuf_words
        assert check(Add(count=4, **{name: limit - 4}), c)[0] is ErrorCode.NONE
        assert check(Add(count=4, **{name: limit - 3}), c)[0] is ErrorCode.BUFFER_RANGE


# ---- programs ------------------------------------------------------------------------------

def test_program_round_trip():
    rng = np.random.default_rng(7)
    program = [random_instruction(Opcode(int(rng.integers(len(Opcode)))), rng)
               for _ in range(60)]
    blob = encode_program(program)
    assert len(blob) == INSTR_BYTES * len(program)
    assert decode_program(blob) == program
    assert int.from_bytes(blob[:INSTR_BYTES], "little") == encode(program[0])
    assert decode_program(b"") == []


def test_program_errors_name_the_instruction():
    blob = bytearray(encode_program([load(), conv(), End()]))
    illegal("length", decode_program, bytes(blob[:-1]))
    blob[INSTR_BYTES] = 0x0E                                   # instruction 1: opcode 14
    err = illegal("opcode", decode_program, bytes(blob))
    assert str(err).startswith("instruction 1:") and err.code is ErrorCode.ILLEGAL_OPCODE
    blob[INSTR_BYTES] = 0x03
    blob[2 * INSTR_BYTES + 31] = 0x80                          # instruction 2: reserved bit 255
    err = illegal("reserved", decode_program, bytes(blob))
    assert str(err).startswith("instruction 2:")
