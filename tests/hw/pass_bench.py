"""Test bench helpers for the pass units (hw/postprocess.py, hw/eltwise.py): lane packing, LUT
loading, running passes with gaps and backpressure, and cycle-exact timing of one run."""

from __future__ import annotations

import numpy as np

from tests.streams import collect, feed, put, run_sim

__all__ = ["pack_lanes", "unpack_int8", "lut_word_payloads", "load_lut", "run_passes",
           "time_passes"]


def pack_lanes(values, bits: int) -> int:
    """One flat payload: lane k (two's complement, `bits` wide) at bits [k*bits, (k+1)*bits)."""
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (k * bits) for k, v in enumerate(values))


def unpack_int8(word: int, lanes: int) -> np.ndarray:
    return np.frombuffer(int(word).to_bytes(lanes, "little"), np.int8).copy()


def lut_word_payloads(lut: np.ndarray, word_bytes: int) -> list[dict]:
    """The LUT-buffer words of a 256-entry int8 table, as `lut` port payloads."""
    raw = np.asarray(lut, np.int8).view(np.uint8)
    return [{"addr": w, "data": int.from_bytes(raw[w * word_bytes:(w + 1) * word_bytes]
                                               .tobytes(), "little")}
            for w in range(256 // word_bytes)]


async def load_lut(ctx, port, lut: np.ndarray, word_bytes: int) -> None:
    """Write the table word by word, then wait until the last word is in it."""
    for payload in lut_word_payloads(lut, word_bytes):
        await put(ctx, port, payload)
    await ctx.tick().until(port.ready)


def run_passes(dut, *, cmds: list[dict], inputs: list[int], lanes: int, lut: np.ndarray,
               word_bytes: int, gaps: float = 0.0, stalls: float = 0.0, seed: int = 0
               ) -> np.ndarray:
    """Load the LUT, send every command and input, and return the outputs as int8 [n, lanes];
    check that the unit is idle once the last output is taken."""
    outputs: list = []

    async def control(ctx):
        await load_lut(ctx, dut.lut, lut, word_bytes)
        for cmd in cmds:
            await put(ctx, dut.cmd, cmd)

    async def producer(ctx):
        await feed(ctx, dut.i, inputs, gaps=gaps, seed=seed)

    async def consumer(ctx):
        outputs.extend(await collect(ctx, dut.o, len(inputs), stalls=stalls, seed=seed + 1))
        assert ctx.get(dut.idle), "the unit is not idle after its last output was taken"

    run_sim(dut, control, producer, consumer)
    return np.array([unpack_int8(v, lanes) for v in outputs], np.int8).reshape(-1, lanes)


def time_passes(dut, *, cmds: list[dict], inputs: list[int], ready_from: int = 0,
                max_cycles: int = 400) -> tuple[list[int], list[int], list[int]]:
    """Offer `inputs` back to back (after the commands are queued) and take outputs from cycle
    `ready_from` on; return the cycles of every input and output transfer and the outputs."""
    accepted: list[int] = []
    delivered: list[int] = []
    outputs: list[int] = []

    async def control(ctx):
        for cmd in cmds:
            await put(ctx, dut.cmd, cmd)

    async def bench(ctx):
        sent = 0
        for cycle in range(max_cycles):
            ctx.set(dut.o.ready, cycle >= ready_from)
            ctx.set(dut.i.valid, sent < len(inputs))
            if sent < len(inputs):
                ctx.set(dut.i.payload, inputs[sent])
            _, _, i_fire, o_valid, o_ready, payload = await ctx.tick().sample(
                dut.i.valid & dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload)
            if i_fire:
                accepted.append(cycle)
                sent += 1
            if o_valid and o_ready:
                delivered.append(cycle)
                outputs.append(payload)
            if len(outputs) == len(inputs):
                return
        raise AssertionError(f"only {len(outputs)} of {len(inputs)} outputs in {max_cycles} "
                             "cycles")

    run_sim(dut, control, bench)
    return accepted, delivered, outputs
