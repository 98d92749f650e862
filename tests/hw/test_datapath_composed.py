# amaranth: UnusedElaboratable=no
"""The datapath blocks composed: window generator -> systolic core (array + column adder) ->
accumulator -> post-processing -> window generator -> pooling, against an independent
PyTorch computation of convolution + bias/requantization + ReLU + pooling."""

import numpy as np
import pytest
import torch
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import connect

from hw.arith import pack_params
from hw.compute.accumulator import Accumulator
from hw.config import preset
from hw.isa import Activation, PoolKind
from hw.pooling import PoolingUnit
from hw.postprocess import PostProcess
from hw.systolic.core import SystolicCore
from hw.window.generator import WindowGenerator
from tests.streams import collect, put, run_sim

torch.set_num_threads(1)


class Datapath(wiring.Component):
    """The chain under test; the accumulator buffer is a real memory."""

    def __init__(self, config):
        self.config = config
        self.window = WindowGenerator(config=config)
        self.core = SystolicCore(config=config)
        self.acc = Accumulator(config=config)
        self.post = PostProcess(config=config)
        self.pool_window = WindowGenerator(config=config)
        self.pool = PoolingUnit(config=config)
        self.mem = memory.Memory(shape=self.acc.layout, depth=config.acc_words, init=[])
        super().__init__({
            "tile": wiring.In(self.window.i.signature.flip()),
            "window_cmd": wiring.In(self.window.cmd.signature.flip()),
            "weights": wiring.In(self.core.w_in.signature.flip()),
            "acc_cmd": wiring.In(self.acc.cmd.signature.flip()),
            "post_cmd": wiring.In(self.post.cmd.signature.flip()),
            "pool_window_cmd": wiring.In(self.pool_window.cmd.signature.flip()),
            "pool_cmd": wiring.In(self.pool.cmd.signature.flip()),
            "o": wiring.Out(self.pool.o.signature),
        })

    def elaborate(self, platform):
        m = Module()
        for name in ("window", "core", "acc", "post", "pool_window", "pool", "mem"):
            m.submodules[name] = getattr(self, name)
        wr = self.mem.write_port()
        connect(m, self.acc.wr, wr)
        connect(m, self.acc.rd, self.mem.read_port(transparent_for=(wr,)))
        connect(m, wiring.flipped(self.tile), self.window.i)
        connect(m, wiring.flipped(self.window_cmd), self.window.cmd)
        connect(m, wiring.flipped(self.weights), self.core.w_in)
        connect(m, wiring.flipped(self.acc_cmd), self.acc.cmd)
        connect(m, wiring.flipped(self.post_cmd), self.post.cmd)
        connect(m, wiring.flipped(self.pool_window_cmd), self.pool_window.cmd)
        connect(m, wiring.flipped(self.pool_cmd), self.pool.cmd)
        # Window chunks into the core: every pass uses bank 0 and releases it at its end.
        w, c = self.window.o, self.core.i
        m.d.comb += [c.valid.eq(w.valid), c.payload.data.eq(w.payload.data),
                     c.payload.context.eq(w.payload.d), c.payload.bank.eq(0),
                     c.payload.last.eq(w.payload.last), c.payload.release.eq(w.payload.end),
                     w.ready.eq(c.ready)]
        connect(m, self.core.o, self.acc.i)
        connect(m, self.acc.o, self.post.i)
        connect(m, self.post.o, self.pool_window.i)
        pw, p = self.pool_window.o, self.pool.i
        m.d.comb += [p.valid.eq(pw.valid), p.payload.data.eq(pw.payload.data),
                     p.payload.inside.eq(pw.payload.inside), p.payload.last.eq(pw.payload.last),
                     p.payload.end.eq(pw.payload.end), pw.ready.eq(p.ready)]
        connect(m, self.pool.o, wiring.flipped(self.o))
        return m


def pack(lanes) -> int:
    return int.from_bytes(np.asarray(lanes, np.int8).tobytes(), "little")


def reference(x, w, bias, mult, shift, *, stride, pads, pool_kernel, pool_stride):
    """Independent model: torch float64 convolution (exact for these integers), then the
    rounding rule written out with Python integers, ReLU, and torch max pooling."""
    top, left, bottom, right = pads
    xp = torch.nn.functional.pad(torch.tensor(x, dtype=torch.float64)[None],
                                 (left, right, top, bottom))
    acc = torch.nn.functional.conv2d(xp, torch.tensor(w, dtype=torch.float64),
                                     stride=stride)[0].numpy().astype(np.int64)
    t = (acc + bias[:, None, None]) * mult[:, None, None]
    s = shift[:, None, None]
    rounded = np.where(s > 0, (t + (np.int64(1) << np.maximum(s - 1, 0))) >> s, t)
    y = np.maximum(np.clip(rounded, -128, 127), 0).astype(np.float64)
    pooled = torch.nn.functional.max_pool2d(torch.tensor(y)[None], pool_kernel, pool_stride)
    return pooled[0].numpy().astype(np.int8)


def run_layer(config, rng, *, cin, cout, kernel, stride, pads, pool=(2, 2), gaps=0.0,
              stalls=0.0):
    n = config.rows
    top, left, bottom, right = pads
    in_h = in_w = max(kernel + stride, 6)
    x = rng.integers(-128, 128, (cin, in_h, in_w)).astype(np.int8)
    w = rng.integers(-128, 128, (cout, cin, kernel, kernel)).astype(np.int8)
    bias = rng.integers(-5000, 5000, cout)
    mult = rng.integers(1 << 14, 1 << 15, cout)
    shift = rng.integers(16, 20, cout)
    out_h = (in_h + top + bottom - kernel) // stride + 1
    out_w = (in_w + left + right - kernel) // stride + 1
    pool_kernel, pool_stride = pool
    pool_h = (out_h - pool_kernel) // pool_stride + 1
    pool_w = (out_w - pool_kernel) // pool_stride + 1
    want = reference(x, w, bias, mult, shift, stride=stride, pads=pads,
                     pool_kernel=pool_kernel, pool_stride=pool_stride)

    groups = -(-cin // n)
    blocks = -(-cout // n)
    xg = np.zeros((groups * n, in_h, in_w), np.int8)
    xg[:cin] = x
    # Input words in raster order (y, x, group): lanes are the group's n channels.
    tile = [pack(xg[g * n:(g + 1) * n, y, xx]) for y in range(in_h) for xx in range(in_w)
            for g in range(groups)]
    window = kernel * kernel * groups
    passes = [(s, min(config.contexts, window - s)) for s in range(0, window, config.contexts)]
    wpad = np.zeros((blocks * n, groups * n, kernel, kernel), np.int8)
    wpad[:cout, :cin] = w

    def params(block):
        chans = range(block * n, (block + 1) * n)
        get = lambda arr: np.array([arr[c] if c < cout else 0 for c in chans])
        return int.from_bytes(pack_params(get(bias), get(mult), get(shift)), "little")

    def weight_words(block, start, count):
        words = []
        for d in range(count):
            ky, rest = divmod(start + d, kernel * groups)
            kx, g = divmod(rest, groups)
            for col in range(n):
                words.append(wpad[block * n + col, g * n:(g + 1) * n, ky, kx])
        return words

    dut = Datapath(config)
    got = []
    pixels = out_h * out_w

    async def drive_tile(ctx):
        for _ in range(blocks * len(passes)):
            for word in tile:
                while gaps and rng.random() < gaps:
                    await ctx.tick()
                await put(ctx, dut.tile, word)

    async def drive_commands(ctx):
        for block in range(blocks):
            await put(ctx, dut.post_cmd, {"params": {"pbuf_word": params(block),
                                                     "activation": Activation.RELU},
                                          "count": pixels})
            await put(ctx, dut.pool_window_cmd, {
                "in_h": out_h, "in_w": out_w, "groups": 1, "kernel": pool_kernel,
                "stride": pool_stride, "pad_top": 0, "pad_left": 0, "out_h": pool_h,
                "out_w": pool_w, "chunk_start": 0, "chunk_count": pool_kernel ** 2})
            await put(ctx, dut.pool_cmd, {"kind": PoolKind.MAX, "mult": 1, "shift": 0})
            for index, (start, count) in enumerate(passes):
                await put(ctx, dut.window_cmd, {
                    "in_h": in_h, "in_w": in_w, "groups": groups, "kernel": kernel,
                    "stride": stride, "pad_top": top, "pad_left": left, "out_h": out_h,
                    "out_w": out_w, "chunk_start": start, "chunk_count": count})
                await put(ctx, dut.acc_cmd, {"acc_addr": 0, "pixels": pixels,
                                             "accumulate": index > 0,
                                             "output": index == len(passes) - 1})
                words = weight_words(block, start, count)
                for k, word in enumerate(words):
                    await put(ctx, dut.weights, {"data": [int(v) for v in word], "bank": 0,
                                                 "last": k == len(words) - 1})

    async def drain(ctx):
        got.extend(await collect(ctx, dut.o, blocks * pool_h * pool_w, stalls=stalls,
                                 convert=int))

    run_sim(dut, drive_tile, drive_commands, drain)
    out = np.array([np.frombuffer(v.to_bytes(n, "little"), np.int8) for v in got])
    out = out.reshape(blocks, pool_h, pool_w, n).transpose(0, 3, 1, 2).reshape(
        blocks * n, pool_h, pool_w)[:cout]
    np.testing.assert_array_equal(out, want)


# Every listed kernel, stride, padding and channel count appears at least once.
LAYERS = [
    dict(cin=1, cout=1, kernel=1, stride=1, pads=(0, 0, 0, 0)),
    dict(cin=3, cout=16, kernel=3, stride=1, pads=(1, 1, 1, 1)),
    dict(cin=17, cout=20, kernel=3, stride=2, pads=(1, 1, 0, 0)),
    dict(cin=16, cout=1, kernel=5, stride=2, pads=(2, 2, 2, 2)),
    dict(cin=3, cout=20, kernel=7, stride=2, pads=(3, 3, 3, 3)),
    dict(cin=1, cout=16, kernel=11, stride=4, pads=(2, 2, 1, 1)),
    dict(cin=16, cout=20, kernel=1, stride=4, pads=(0, 0, 0, 0)),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: "k{kernel}s{stride}c{cin}-{cout}".format(**l))
def test_composed_datapath_on_tiny(layer):
    rng = np.random.default_rng(layer["kernel"] * 100 + layer["cin"])
    run_layer(preset("tiny"), rng, **layer)


def test_composed_datapath_with_gaps_and_backpressure():
    rng = np.random.default_rng(77)
    run_layer(preset("tiny"), rng, cin=5, cout=6, kernel=3, stride=1, pads=(1, 1, 1, 1),
              pool=(3, 2), gaps=0.3, stalls=0.4)


def test_composed_datapath_on_default():
    rng = np.random.default_rng(16)
    run_layer(preset("default"), rng, cin=17, cout=20, kernel=3, stride=1,
              pads=(1, 1, 1, 1))
