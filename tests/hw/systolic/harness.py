"""Drives `SystolicCore` with passes and compares it with the NumPy model of a pass.

A pass is a weight set w[d, c, r] (chunk_count x columns x rows int8) in one bank and the
chunks x[p, d, r] of its pixels, sent d = 0 .. chunk_count-1 for every pixel. The model is
the einsum of `sim.functional`'s CONV: partial[p, c] = sum_d sum_r x[p, d, r] * w[d, c, r],
wrapped to acc_bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hw.arith import wrap_acc
from hw.config import AcceleratorConfig
from hw.systolic import SystolicCore
from tests.streams import collect, feed, run_sim

__all__ = ["Pass", "Run", "random_pass", "model", "run_core"]


@dataclass
class Pass:
    weights: np.ndarray          #: [chunk_count, columns, rows] int8
    chunks: np.ndarray           #: [pixels, chunk_count, rows] int8
    bank: int
    load: bool = True            #: send the weights on w_in before the chunks use them
    release: bool = True         #: flag `release` on the pass's last chunk

    @property
    def pixels(self) -> int:
        return self.chunks.shape[0]

    @property
    def chunk_count(self) -> int:
        return self.chunks.shape[1]


@dataclass
class Run:
    outputs: np.ndarray                               #: [pixels of all passes, columns]
    chunk_cycles: list[int] = field(default_factory=list)   #: cycle of each `i` handshake
    output_cycles: list[int] = field(default_factory=list)  #: cycle of each `o` handshake
    word_cycles: list[int] = field(default_factory=list)    #: cycle of each `w_in` handshake


def random_pass(rng: np.random.Generator, config: AcceleratorConfig, *, pixels: int,
                chunk_count: int, bank: int, **flags) -> Pass:
    weights = rng.integers(-128, 128, (chunk_count, config.columns, config.rows), dtype=np.int8)
    chunks = rng.integers(-128, 128, (pixels, chunk_count, config.rows), dtype=np.int8)
    return Pass(weights, chunks, bank, **flags)


def model(config: AcceleratorConfig, passes: list[Pass]) -> np.ndarray:
    return np.concatenate([
        wrap_acc(np.einsum("pdr,dcr->pc", p.chunks.astype(np.int64),
                           p.weights.astype(np.int64)), config.acc_bits)
        for p in passes])


def _words(p: Pass) -> list[dict]:
    flat = p.weights.reshape(-1, p.weights.shape[-1])   # word d * columns + c
    return [{"data": [int(v) for v in word], "bank": p.bank, "last": n == len(flat) - 1}
            for n, word in enumerate(flat)]


def _chunks(p: Pass) -> list[dict]:
    return [{"data": [int(v) for v in p.chunks[px, d]], "context": d, "bank": p.bank,
             "last": d == p.chunk_count - 1,
             "release": p.release and px == p.pixels - 1 and d == p.chunk_count - 1}
            for px in range(p.pixels) for d in range(p.chunk_count)]


def run_core(config: AcceleratorConfig, passes: list[Pass], *, gaps: float = 0.0,
             stalls: float = 0.0, weight_gaps: float = 0.0, seed: int = 0,
             max_cycles: int = 20_000) -> Run:
    """Feed weight loads and chunks from two independent producers, collect every pixel's
    sums, and record the cycle of every handshake (cycle 0 is the first clock edge)."""
    dut = SystolicCore(config=config)
    total = sum(p.pixels for p in passes)
    run = Run(outputs=np.zeros((0, config.columns), dtype=np.int64))
    results = []

    async def weights(ctx):
        await feed(ctx, dut.w_in, [w for p in passes if p.load for w in _words(p)],
                   gaps=weight_gaps, seed=seed + 1)

    async def chunks(ctx):
        await feed(ctx, dut.i, [c for p in passes for c in _chunks(p)], gaps=gaps,
                   seed=seed + 2)

    async def sums(ctx):
        results.extend(await collect(ctx, dut.o, total, stalls=stalls, seed=seed + 3,
                                     convert=lambda v: [v[c] for c in range(config.columns)]))

    async def monitor(ctx):
        cycle = 0
        ports = (dut.i, dut.o, dut.w_in)
        async for _, _, *flags in ctx.tick().sample(
                *(s for port in ports for s in (port.valid, port.ready))):
            for (valid, ready), stamps in zip(zip(flags[::2], flags[1::2]),
                                              (run.chunk_cycles, run.output_cycles,
                                               run.word_cycles)):
                if valid and ready:
                    stamps.append(cycle)
            cycle += 1
            if cycle > max_cycles:
                raise AssertionError(f"core did not finish within {max_cycles} cycles: "
                                     f"{len(results)} of {total} pixels out")

    run_sim(dut, weights, chunks, sums, processes=[monitor])
    run.outputs = np.array(results, dtype=np.int64).reshape(total, config.columns)
    return run
