"""The functional model against independent computations.

Every hand-written program here runs on `FunctionalMachine` and its result is compared with
PyTorch (float64 on the same integers, exact below 2**53) or plain NumPy loops: nothing from
hw/arith.py or the compiler. DRAM images are built by the small helpers below, in the blocked
layout (C/lanes, H, W, lanes) with the channels zero-padded to whole blocks.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hw.config import PRESETS
from hw.isa import Activation, Add, Buffer, Conv, End, ErrorCode, Load, Pool, PoolKind, Store
from sim.functional import FunctionalMachine, MachineError, RaceError

torch.set_num_threads(1)
TINY, DEFAULT = PRESETS["tiny"], PRESETS["default"]
CONFIGS = [TINY, DEFAULT]


# ---- DRAM images, written here independently of the compiler -------------------------------

def blocked(x: np.ndarray, lanes: int) -> bytes:
    """int8 [C, H, W] -> bytes of (ceil(C/lanes), H, W, lanes), padding channels with zeros."""
    c, h, w = x.shape
    groups = -(-c // lanes)
    out = np.zeros((groups * lanes, h, w), np.int8)
    out[:c] = x
    return out.reshape(groups, lanes, h, w).transpose(0, 2, 3, 1).tobytes()


def unblocked(raw: bytes, c: int, h: int, w: int, lanes: int) -> np.ndarray:
    groups = -(-c // lanes)
    x = np.frombuffer(raw, np.int8).reshape(groups, h, w, lanes).transpose(0, 3, 1, 2)
    return x.reshape(groups * lanes, h, w)[:c]


def weight_words(w: np.ndarray, lanes: int, columns: int) -> np.ndarray:
    """int8 [Cout <= columns, Cin, K, K] -> weight-buffer words [chunks, columns, lanes] with chunk
    (ky, kx, g) at index (ky*K + kx)*G + g, lane r = input channel g*lanes + r."""
    cout, cin, k, _ = w.shape
    groups = -(-cin // lanes)
    words = np.zeros((k, k, groups, columns, lanes), np.int8)
    for col in range(cout):
        for ch in range(cin):
            words[:, :, ch // lanes, col, ch % lanes] = w[col, ch]
    return words.reshape(k * k * groups, columns, lanes)


def param_word(bias, mult, shift, columns: int) -> bytes:
    """One parameter word: per column int32 bias, int16 multiplier, uint8 shift, one pad byte."""
    out = b""
    for col in range(columns):
        b, m, s = (bias[col], mult[col], shift[col]) if col < len(bias) else (0, 0, 0)
        out += struct.pack("<ihBx", int(b), int(m), int(s))
    return out


class Image:
    """A DRAM image assembled from placed byte strings."""

    def __init__(self) -> None:
        self.data = bytearray()

    def place(self, address: int, blob: bytes) -> int:
        end = address + len(blob)
        self.data.extend(bytes(max(0, end - len(self.data))))
        self.data[address:end] = blob
        return address


# ---- independent references ----------------------------------------------------------------

def rshift_round(t: np.ndarray, shift) -> np.ndarray:
    """floor(t / 2**s + 1/2) with Python integers (round half up)."""
    t = np.asarray(t, dtype=object)
    shift = np.broadcast_to(np.asarray(shift, dtype=object), t.shape)
    out = np.empty(t.shape, dtype=object)
    for i in np.ndindex(t.shape):
        s = int(shift[i])
        out[i] = int(t[i]) if s == 0 else (int(t[i]) + (1 << (s - 1))) // (1 << s)
    return out.astype(np.int64)


def activate_ref(y: np.ndarray, activation: Activation, lut: np.ndarray) -> np.ndarray:
    y = np.clip(y, -128, 127)
    if activation is Activation.RELU:
        y = np.where(y < 0, 0, y)
    elif activation is Activation.LUT:
        y = np.array([lut[v + 128] for v in y.reshape(-1)], np.int64).reshape(y.shape)
    return y


def conv_ref(x, w, *, stride, pad_top, pad_left, out_h, out_w) -> np.ndarray:
    """int64 [Cout, out_h, out_w] accumulators: zero padding top/left as given and as much
    bottom/right as the output size needs."""
    k = w.shape[-1]
    _, h, wd = x.shape
    pad_bottom = max(0, (out_h - 1) * stride + k - pad_top - h)
    pad_right = max(0, (out_w - 1) * stride + k - pad_left - wd)
    xt = F.pad(torch.tensor(x, dtype=torch.float64)[None],
               (pad_left, pad_right, pad_top, pad_bottom))
    y = F.conv2d(xt, torch.tensor(w, dtype=torch.float64), stride=stride)[0]
    return y[:, :out_h, :out_w].numpy().astype(np.int64)


# ---- convolution ---------------------------------------------------------------------------

def conv_tile_program(*, h, w, groups, k, stride, pad_top, pad_left, out_h, out_w, blocks,
                      columns, pass_chunks, activation, lut_words, addresses) -> list:
    """LOAD the input tile, weights, LUT and parameters; every output block's CONV passes of at
    most `pass_chunks` chunks (accumulating, `activation` on the last); STORE the blocks.
    `addresses`: DRAM a_in, a_w, a_lut, a_p, a_out. One token orders the loads before the
    first pass, one the last pass before the store."""
    a = addresses
    chunks = k * k * groups
    pixels = out_h * out_w
    program = [
        Load(buffer=Buffer.IBUF, dram_addr=a["a_in"], size0=groups * h * w, count1=1, count2=1),
        Load(buffer=Buffer.WBUF, dram_addr=a["a_w"], size0=blocks * chunks * columns,
             count1=1, count2=1),
        Load(buffer=Buffer.LUT, dram_addr=a["a_lut"], size0=lut_words, count1=1, count2=1),
        Load(buffer=Buffer.PBUF, dram_addr=a["a_p"], size0=blocks, count1=1, count2=1,
             push_next=True),
    ]
    starts = list(range(0, chunks, pass_chunks))
    for b in range(blocks):
        for i, start in enumerate(starts):
            last = i == len(starts) - 1
            program.append(Conv(
                pop_prev=b == 0 and i == 0, push_next=b == blocks - 1 and last,
                accumulate=int(i > 0), output=int(last),
                activation=activation if last else Activation.NONE,
                in_h=h, in_w=w, in_groups=groups, kernel=k, stride=stride, pad_top=pad_top,
                pad_left=pad_left, out_h=out_h, out_w=out_w, chunk_start=start,
                chunk_count=min(pass_chunks, chunks - start),
                wbuf_addr=(b * chunks + start) * columns, obuf_addr=b * pixels, pbuf_addr=b))
    return program + [Store(buffer=Buffer.OBUF, dram_addr=a["a_out"], size0=blocks * pixels,
                            count1=1, count2=1, pop_prev=True), End()]


def run_conv(config, rng, *, cin, cout, h, w, k, stride, pad_top, pad_left, out_h, out_w,
             pass_chunks, activation, acc_wrap_bits=None, values=(-128, 128)):
    lanes = cols = config.lanes
    groups, blocks = -(-cin // lanes), -(-cout // cols)
    x = rng.integers(*values, (cin, h, w)).astype(np.int8)
    wt = rng.integers(*values, (cout, cin, k, k)).astype(np.int8)
    acc = conv_ref(x, wt, stride=stride, pad_top=pad_top, pad_left=pad_left, out_h=out_h,
                   out_w=out_w)
    if acc_wrap_bits:
        half = 1 << (acc_wrap_bits - 1)
        acc = (acc + half) % (1 << acc_wrap_bits) - half
    bias = rng.integers(-5000, 5000, cout)
    mult = rng.integers(-3000, 3000, cout)
    peak = np.abs(acc + bias[:, None, None]).max(axis=(1, 2)) * np.abs(mult) + 1
    shift = np.clip(np.ceil(np.log2(peak / 150.0)), 0, 63).astype(np.int64)  # some saturate
    lut = rng.integers(-128, 128, 256)

    image = Image()
    a_in = image.place(0, blocked(x, lanes))
    chunks = k * k * groups
    words = np.concatenate([weight_words(wt[b * cols:(b + 1) * cols], lanes, cols)
                            for b in range(blocks)])
    a_w = image.place(1 << 15, words.tobytes())
    a_p = image.place(1 << 17, b"".join(
        param_word(bias[b * cols:], mult[b * cols:], shift[b * cols:], cols)
        for b in range(blocks)))
    a_lut = image.place((1 << 17) + 4096, np.asarray(lut, np.int8).tobytes())
    a_out = (1 << 17) + 8192

    pixels = out_h * out_w
    program = conv_tile_program(
        h=h, w=w, groups=groups, k=k, stride=stride, pad_top=pad_top, pad_left=pad_left,
        out_h=out_h, out_w=out_w, blocks=blocks, columns=cols, pass_chunks=pass_chunks,
        activation=activation, lut_words=config.lut_words,
        addresses=dict(a_in=a_in, a_w=a_w, a_lut=a_lut, a_p=a_p, a_out=a_out))
    machine = FunctionalMachine(config, image.data)
    stats = machine.run(program)

    got = unblocked(machine.read_dram(a_out, blocks * pixels * lanes), cout, out_h, out_w, lanes)
    t = (acc + bias[:, None, None]) * mult[:, None, None]
    want = activate_ref(rshift_round(t, shift[:, None, None]), activation, lut)
    np.testing.assert_array_equal(got.astype(np.int64), want)
    assert stats.instructions["CONV"] == blocks * -(-chunks // pass_chunks)
    assert stats.conv_chunks == blocks * chunks * pixels
    return want


CONV_CASES = [
    # cin, cout, h, w, k, stride, pad_top, pad_left, out_h, out_w, pass_chunks, activation
    (3, 3, 6, 7, 1, 1, 0, 0, 6, 7, 16, Activation.NONE),
    (17, 6, 8, 8, 3, 1, 1, 1, 8, 8, 16, Activation.RELU),
    (5, 4, 11, 9, 5, 2, 2, 1, 6, 5, 7, Activation.LUT),
    (3, 4, 15, 13, 7, 2, 3, 3, 8, 7, 16, Activation.NONE),
    (3, 3, 23, 23, 11, 4, 2, 2, 5, 5, 16, Activation.RELU),
    (6, 5, 9, 10, 3, 4, 0, 1, 2, 3, 4, Activation.LUT),
    (17, 17, 10, 10, 3, 1, 1, 1, 10, 10, 16, Activation.RELU),
    (3, 16, 27, 27, 11, 4, 0, 0, 5, 5, 11, Activation.NONE),
    (40, 20, 5, 5, 1, 1, 0, 0, 5, 5, 2, Activation.LUT),
    (16, 16, 7, 7, 5, 1, 2, 2, 7, 7, 16, Activation.RELU),
    (3, 8, 16, 16, 7, 2, 3, 3, 8, 8, 16, Activation.NONE),
    (17, 3, 4, 4, 1, 1, 0, 0, 4, 4, 1, Activation.NONE),
]


def _fits(config, case) -> bool:
    cin, cout, h, w, k, *_ = case
    groups, blocks = -(-cin // config.lanes), -(-cout // config.columns)
    return (k * k * groups * blocks * config.columns <= config.wbuf_words
            and w * groups <= config.line_buffer_words and blocks <= config.pbuf_words)


# Each config runs the cases whose weights fit its weight buffer (tiny: 128 chunks x blocks).
CONV_PARAMS = [pytest.param(c, case, id="{}-c{}-o{}-{}x{}-k{}s{}".format(c.name, *case[:6]))
               for c in CONFIGS for case in CONV_CASES if _fits(c, case)]


def test_conv_cases_cover_every_kernel_and_stride():
    for config in CONFIGS:
        cases = [p.values[1] for p in CONV_PARAMS if p.values[0] is config]
        assert {case[4] for case in cases} == {1, 3, 5, 7, 11}, config.name
        assert {case[5] for case in cases} == {1, 2, 4}, config.name
        assert any(case[0] % config.lanes for case in cases), config.name
        assert any(-(-case[0] // config.lanes) * case[4] ** 2 > case[10] for case in cases)


@pytest.mark.parametrize("config, case", CONV_PARAMS)
def test_conv_tile(config, case):
    cin, cout, h, w, k, stride, pt, pl, oh, ow, pass_chunks, act = case
    rng = np.random.default_rng(sum(case[:11]) * 7 + config.rows)
    run_conv(config, rng, cin=cin, cout=cout, h=h, w=w, k=k, stride=stride, pad_top=pt,
             pad_left=pl, out_h=oh, out_w=ow, pass_chunks=min(pass_chunks, config.contexts),
             activation=act)


def test_conv_accumulator_wraps_at_acc_bits():
    # 20-bit accumulators: 121 taps x 3 channels of products >= 100*100 sum to more than
    # 3.6e6 > 2**19, so every output wraps (several times, over 8 passes).
    config = TINY.replace(name="tiny-acc20", acc_bits=20)
    rng = np.random.default_rng(5)
    run_conv(config, rng, cin=3, cout=4, h=11, w=11, k=11, stride=1, pad_top=0, pad_left=0,
             out_h=1, out_w=1, pass_chunks=16, activation=Activation.NONE, acc_wrap_bits=20,
             values=(100, 128))


def test_requantize_rounding_edges():
    """1x1 convolution with weight 1 on one channel: the accumulator is the input, so each
    output shows the rounding of (x + bias) * mult >> shift exactly (half rounds up)."""
    config = TINY
    xs = np.array([-128, -7, -6, -5, -3, -2, -1, 0, 1, 2, 3, 5, 6, 7, 100, 127], np.int8)
    image = Image()
    image.place(0, blocked(xs.reshape(1, 4, 4), 4))
    w = np.zeros((4, 4), np.int8)
    w[:, 0] = 1
    image.place(256, w.tobytes())
    cases = [(0, 1, 2), (1, 3, 1), (0, -1, 0), (10, 200, 0)]   # (bias, mult, shift) per column
    image.place(512, param_word(*zip(*cases), 4))
    program = [Load(buffer=Buffer.IBUF, size0=16, count1=1, count2=1),
               Load(buffer=Buffer.WBUF, dram_addr=256, size0=4, count1=1, count2=1),
               Load(buffer=Buffer.PBUF, dram_addr=512, size0=1, count1=1, count2=1,
                    push_next=True),
               Conv(pop_prev=True, output=1, in_h=4, in_w=4, in_groups=1, kernel=1, stride=1,
                    out_h=4, out_w=4, chunk_count=1), End()]
    machine = FunctionalMachine(config, image.data)
    machine.run(program)
    got = machine.buffers[Buffer.OBUF][:16].astype(np.int64)
    x = xs.astype(np.int64)
    want = np.stack([
        np.floor((x + 0) * 1 / 4 + 0.5),      # -6/4 = -1.5 -> -1, -2/4 = -0.5 -> 0, 6/4 -> 2
        np.floor((x + 1) * 3 / 2 + 0.5),
        -x,                                    # -(-128) = 128 saturates to 127
        (x + 10) * 200,
    ], axis=1)
    np.testing.assert_array_equal(got, np.clip(want, -128, 127))
    assert got[xs.tolist().index(-6), 0] == -1 and got[xs.tolist().index(-2), 0] == 0
    assert got[0, 2] == 127


# ---- pooling -------------------------------------------------------------------------------

def run_pool(config, x, instr_fields, *, kind):
    lanes = config.lanes
    c, h, w = x.shape
    groups = -(-c // lanes)
    image = Image()
    image.place(0, blocked(x, lanes))
    f = dict(kind=kind, in_h=h, in_w=w, groups=groups, **instr_fields)
    pixels = f["out_h"] * f["out_w"]
    a_out = 1 << 16
    program = [Load(buffer=Buffer.IBUF, size0=groups * h * w, count1=1, count2=1,
                    push_next=True),
               Pool(pop_prev=True, push_next=True, ibuf_addr=0, obuf_addr=0, **f),
               Store(buffer=Buffer.OBUF, dram_addr=a_out, size0=groups * pixels, count1=1,
                     count2=1, pop_prev=True), End()]
    machine = FunctionalMachine(config, image.data)
    machine.run(program)
    return unblocked(machine.read_dram(a_out, groups * pixels * lanes), c, f["out_h"],
                     f["out_w"], lanes).astype(np.int64)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
@pytest.mark.parametrize("k, s, pad, h, w, mult, shift", [
    (2, 2, 0, 8, 8, 1, 0),        # the common 2x2/2
    (3, 2, 1, 9, 10, 1, 0),       # overlapping 3x3/2 with padding (ResNet stem)
    (3, 2, 0, 13, 13, 1, 0),      # AlexNet's overlapping pool
    (2, 2, 0, 6, 6, 3, 1),        # max then rescale: (3 * m + 1) >> 1
])
def test_max_pool(config, k, s, pad, h, w, mult, shift):
    rng = np.random.default_rng(10 * k + s + pad)
    x = rng.integers(-128, 128, (6, h, w)).astype(np.int8)
    m = F.max_pool2d(torch.tensor(x, dtype=torch.float64)[None], k, s, pad)[0].numpy()
    out_h, out_w = m.shape[1:]
    got = run_pool(config, x, dict(kernel=k, stride=s, pad_top=pad, pad_left=pad, out_h=out_h,
                                   out_w=out_w, mult=mult, shift=shift), kind=PoolKind.MAX)
    want = np.clip(rshift_round(m.astype(np.int64) * mult, shift), -128, 127)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
@pytest.mark.parametrize("k, s, pad, h, w", [(2, 2, 0, 8, 8), (3, 2, 1, 9, 9), (3, 1, 1, 5, 7)])
def test_avg_pool(config, k, s, pad, h, w):
    rng = np.random.default_rng(100 + k + s + pad)
    x = rng.integers(-128, 128, (5, h, w)).astype(np.int8)
    # Padding taps count as zeros in the sum; the divisor is k*k, as mult / 2**shift.
    mean = F.avg_pool2d(torch.tensor(x, dtype=torch.float64)[None], k, s, pad,
                        count_include_pad=True)[0].numpy()
    sums = np.rint(mean * k * k).astype(np.int64)
    shift = 16
    mult = round((1 << shift) / (k * k))
    out_h, out_w = sums.shape[1:]
    got = run_pool(config, x, dict(kernel=k, stride=s, pad_top=pad, pad_left=pad, out_h=out_h,
                                   out_w=out_w, mult=mult, shift=shift), kind=PoolKind.AVG)
    want = np.clip(rshift_round(sums * mult, shift), -128, 127)
    np.testing.assert_array_equal(got, want)
    assert np.abs(got - mean).max() <= 1


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_global_avg_pool(config):
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (19, 7, 7)).astype(np.int8)
    mult, shift = round((1 << 20) / 49), 20
    got = run_pool(config, x, dict(kernel=0, stride=0, out_h=1, out_w=1, mult=mult,
                                   shift=shift), kind=PoolKind.GLOBAL_AVG)
    sums = x.astype(np.int64).sum(axis=(1, 2))
    want = np.clip(rshift_round(sums * mult, shift), -128, 127)
    np.testing.assert_array_equal(got[:, 0, 0], want)


# ---- element-wise add ----------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
@pytest.mark.parametrize("activation", list(Activation))
def test_elementwise_add(config, activation):
    rng = np.random.default_rng(20 + activation.value)
    lanes, count = config.lanes, 37
    a = rng.integers(-128, 128, (count, lanes)).astype(np.int8)
    b = rng.integers(-128, 128, (count, lanes)).astype(np.int8)
    lut = rng.integers(-128, 128, 256).astype(np.int8)
    mult_a, mult_b, shift = 11000, -7000, 14
    image = Image()
    image.place(0, a.tobytes())
    image.place(8192, b.tobytes())
    image.place(16384, lut.tobytes())
    a_out = 32768
    program = [
        Load(buffer=Buffer.IBUF, buf_addr=5, size0=count, count1=1, count2=1),
        Load(buffer=Buffer.IBUF, buf_addr=100, dram_addr=8192, size0=count, count1=1, count2=1),
        Load(buffer=Buffer.LUT, dram_addr=16384, size0=config.lut_words, count1=1, count2=1,
             push_next=True),
        Add(pop_prev=True, push_next=True, activation=activation, a_addr=5, b_addr=100,
            count=count, obuf_addr=3, mult_a=mult_a, mult_b=mult_b, shift=shift),
        Store(pop_prev=True, buffer=Buffer.OBUF, buf_addr=3, dram_addr=a_out, size0=count,
              count1=1, count2=1),
        End(),
    ]
    machine = FunctionalMachine(config, image.data)
    machine.run(program)
    got = np.frombuffer(machine.read_dram(a_out, count * lanes), np.int8).reshape(count, lanes)
    want = np.empty((count, lanes), np.int64)
    for i in range(count):
        for j in range(lanes):
            t = int(a[i, j]) * mult_a + int(b[i, j]) * mult_b
            y = min(127, max(-128, (t + (1 << (shift - 1))) >> shift))
            if activation is Activation.RELU:
                y = max(y, 0)
            elif activation is Activation.LUT:
                y = int(lut[y + 128])
            want[i, j] = y
    np.testing.assert_array_equal(got, want)


# ---- DMA -----------------------------------------------------------------------------------

def gather(dram: np.ndarray, dram_addr, size0, count1, stride1, count2, stride2, wb) -> np.ndarray:
    words = []
    for i2 in range(count2):
        for i1 in range(count1):
            for i0 in range(size0):
                start = dram_addr + i2 * stride2 + i1 * stride1 + i0 * wb
                words.append(dram[start:start + wb])
    return np.array(words)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_dma_round_trip_3d(config):
    """A 3-D strided load (a 3x5-word window of 2 planes with gaps), a copy through the
    element-wise unit (a*1 + b*0), and a 2-D strided store into a different pattern."""
    wb = config.word_bytes
    rng = np.random.default_rng(4)
    src = rng.integers(0, 256, 64 * 1024).astype(np.uint8)
    load = dict(dram_addr=3 * wb, size0=5, count1=3, stride1=9 * wb, count2=2, stride2=40 * wb)
    store = dict(dram_addr=48 * 1024, size0=3, count1=10, stride1=7 * wb, count2=1, stride2=0)
    program = [
        Load(buffer=Buffer.IBUF, buf_addr=10, push_next=True, **load),
        Add(pop_prev=True, push_next=True, a_addr=10, b_addr=10, count=30, obuf_addr=20,
            mult_a=1, mult_b=0, shift=0),
        Store(pop_prev=True, buffer=Buffer.OBUF, buf_addr=20, **store),
        End(),
    ]
    machine = FunctionalMachine(config, src.tobytes())
    stats = machine.run(program)
    words = gather(src, wb=wb, **load)
    np.testing.assert_array_equal(machine.buffers[Buffer.IBUF][10:40].view(np.uint8), words)
    want = src.copy()
    i = 0
    for i1 in range(store["count1"]):
        for i0 in range(store["size0"]):
            start = store["dram_addr"] + i1 * store["stride1"] + i0 * wb
            want[start:start + wb] = words[i]
            i += 1
    np.testing.assert_array_equal(machine.dram[:len(want)], want)
    assert stats.dram_read_bytes == stats.dram_write_bytes == 30 * wb


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
@pytest.mark.parametrize("buffer", [Buffer.WBUF, Buffer.PBUF, Buffer.LUT, Buffer.OBUF])
def test_dma_loads_every_buffer(config, buffer):
    wb = config.pbuf_word_bytes if buffer is Buffer.PBUF else config.word_bytes
    rng = np.random.default_rng(buffer.value)
    src = rng.integers(0, 256, 16 * 1024).astype(np.uint8)
    fields = dict(dram_addr=2 * wb, size0=2, count1=2, stride1=5 * wb, count2=2, stride2=13 * wb)
    machine = FunctionalMachine(config, src.tobytes())
    machine.run([Load(buffer=buffer, buf_addr=1, **fields), End()])
    got = machine.buffers[buffer][1:9].view(np.uint8).reshape(8, wb)
    np.testing.assert_array_equal(got, gather(src, wb=wb, **fields))


# ---- queues, tokens and errors -------------------------------------------------------------

def pipeline(x, a_out, *, backpressure=True):
    """Tiles through two input-buffer and two output-buffer slots. Tokens: LOAD -> COMPUTE
    'tile loaded', COMPUTE -> STORE 'result ready' and, with `backpressure`, COMPUTE -> LOAD
    'input slot free' and STORE -> COMPUTE 'output slot free'."""
    tiles, count, lanes = x.shape
    program = []
    for t in range(tiles):
        slot, reuse, freed = t % 2, backpressure and t >= 2, backpressure and t < tiles - 2
        program.append(Load(pop_next=reuse, push_next=True, buffer=Buffer.IBUF,
                            buf_addr=slot * count, dram_addr=t * count * lanes, size0=count,
                            count1=1, count2=1))
        program.append(Add(pop_prev=True, push_prev=freed, pop_next=reuse, push_next=True,
                           activation=Activation.RELU, a_addr=slot * count,
                           b_addr=slot * count, count=count, obuf_addr=slot * count,
                           mult_a=1, mult_b=1, shift=1))
        program.append(Store(pop_prev=True, push_prev=freed, buffer=Buffer.OBUF,
                             buf_addr=slot * count, dram_addr=a_out + t * count * lanes,
                             size0=count, count1=1, count2=1))
    return program + [End()]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_double_buffered_pipeline(config):
    rng = np.random.default_rng(8)
    x = rng.integers(-128, 128, (4, 8, config.lanes)).astype(np.int8)
    a_out = 1 << 15
    machine = FunctionalMachine(config, x.tobytes())
    stats = machine.run(pipeline(x, a_out))
    got = np.frombuffer(machine.read_dram(a_out, x.size), np.int8).reshape(x.shape)
    # (x + x + 1) >> 1 = x, then ReLU.
    np.testing.assert_array_equal(got, np.maximum(x, 0))
    assert stats.instructions == {"LOAD": 4, "ADD": 4, "STORE": 4}
    # Without the slot-free tokens the third load may overwrite a slot still being read.
    with pytest.raises(RaceError):
        FunctionalMachine(config, x.tobytes()).run(pipeline(x, a_out, backpressure=False))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_deadlock(config):
    program = [Load(pop_next=True, buffer=Buffer.IBUF, size0=1, count1=1, count2=1),
               Add(pop_next=True, count=1),
               Store(pop_prev=True, buffer=Buffer.OBUF, size0=1, count1=1, count2=1),
               End()]
    with pytest.raises(MachineError) as info:
        FunctionalMachine(config).run(program)
    assert info.value.code is ErrorCode.DEADLOCK
    assert info.value.index == 3    # the dispatcher had reached END
    assert "LOAD #0" in str(info.value) and "STORE #2" in str(info.value)


def test_deadlock_waiting_for_a_token_never_pushed():
    with pytest.raises(MachineError) as info:
        FunctionalMachine(TINY).run([Add(pop_prev=True, count=1), End()])
    assert info.value.code is ErrorCode.DEADLOCK


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_token_overflow(config):
    depth = config.token_depth
    program = [Load(push_next=True, buffer=Buffer.IBUF, buf_addr=i, size0=1, count1=1, count2=1)
               for i in range(depth + 1)] + [End()]
    with pytest.raises(MachineError) as info:
        FunctionalMachine(config).run(program)
    assert info.value.code is ErrorCode.TOKEN_OVERFLOW and info.value.index == depth
    # Exactly token_depth unconsumed tokens are fine.
    FunctionalMachine(config).run(program[:depth] + [End()])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_dram_range(config):
    wb = config.word_bytes
    program = [Load(buffer=Buffer.IBUF, size0=1, count1=1, count2=1),
               Load(buffer=Buffer.IBUF, dram_addr=config.dram_bytes - wb, size0=2, count1=1,
                    count2=1),
               End()]
    with pytest.raises(MachineError) as info:
        FunctionalMachine(config).run(program)
    assert info.value.code is ErrorCode.DRAM_RANGE and info.value.index == 1


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_buffer_range(config):
    program = [Load(buffer=Buffer.IBUF, size0=1, count1=1, count2=1, push_next=True),
               Pool(pop_prev=True, kind=PoolKind.MAX, in_h=2, in_w=2, groups=1, kernel=2,
                    stride=2, out_h=1, out_w=1, mult=1, obuf_addr=config.obuf_words),
               End()]
    with pytest.raises(MachineError) as info:
        FunctionalMachine(config).run(program)
    assert info.value.code is ErrorCode.BUFFER_RANGE and info.value.index == 1


def test_misaligned():
    program = [Load(buffer=Buffer.IBUF, dram_addr=2, size0=1, count1=1, count2=1), End()]
    with pytest.raises(MachineError) as info:
        FunctionalMachine(TINY).run(program)
    assert info.value.code is ErrorCode.MISALIGNED and info.value.index == 0


@pytest.mark.parametrize("flag", ["pop_prev", "push_prev"])
def test_token_to_a_missing_neighbour(flag):
    program = [Load(buffer=Buffer.IBUF, size0=1, count1=1, count2=1, **{flag: True}), End()]
    with pytest.raises(MachineError) as info:
        FunctionalMachine(TINY).run(program)
    assert info.value.code is ErrorCode.ILLEGAL_FIELD and info.value.index == 0


def test_program_without_end():
    with pytest.raises(MachineError) as info:
        FunctionalMachine(TINY).run([Load(buffer=Buffer.IBUF, size0=1, count1=1, count2=1)])
    assert info.value.code is ErrorCode.DRAM_RANGE and info.value.index == 1


def test_dram_image_too_large():
    with pytest.raises(ValueError, match="exceeds dram_bytes"):
        FunctionalMachine(TINY, bytes(TINY.dram_bytes + 1))
