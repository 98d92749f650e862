"""A Python AXI4 slave memory for Amaranth async testbenches.

`AXI4Memory` serves the read channels (AR, R) and the write channels (AW, W, B) of an
`AXI4Signature`-shaped interface from a NumPy byte array, one background testbench per side.
It is the DRAM of the unit tests and checks the master's side of the protocol as it goes:
VALID held and payload stable until READY, INCR bursts of full-width beats within
`max_burst_beats`, no burst crossing 4 KiB, WLAST on exactly the last beat, every address
inside the memory.

Timing knobs (all seeded, so a run repeats exactly):
- `latency`: cycles from the AR handshake to the first R beat it may present (>= 1); also
  from the last W beat of a burst (with its AW) to its B response.
- `bytes_per_cycle`: sustained bandwidth of each direction (a token bucket); at least the bus
  width means one beat per cycle.
- `stall`: probability that a channel is held off in a cycle (ARREADY/AWREADY/WREADY low,
  RVALID/BVALID withheld), drawn independently per channel.
- `errors`: byte ranges `(start, end, AXIResp)` that answer reads and writes with that
  response (writes there are dropped).

Logs for tests: `ar_log`/`aw_log` (cycle, addr, len) of accepted addresses, `r_cycles`,
`w_cycles` and `b_cycles` (cycle of each accepted R beat, W beat and B response), and `cycle`
(cycles since the start). Cycle n is the n-th clock edge, counted from 0.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from hw.axi.signatures import AXIBurst, AXIResp

__all__ = ["AXI4Memory", "ProtocolError"]


class ProtocolError(AssertionError):
    """The master broke an AXI rule; the message says which and when."""


@dataclass
class _Burst:
    ready_cycle: int
    addr: int
    beats: int
    ident: int
    done: int = 0


class _Bandwidth:
    """A token bucket of `rate` bytes per cycle; `take` spends one beat if it is there."""

    def __init__(self, rate: float | None, beat_bytes: int) -> None:
        self.rate = rate
        self.beat = beat_bytes
        self.level = float(beat_bytes)
        self.cap = float(max(beat_bytes, rate or 0))

    def has_beat(self) -> bool:
        return self.rate is None or self.level >= self.beat

    def take(self) -> None:
        if self.rate is not None:
            self.level -= self.beat

    def tick(self) -> None:
        if self.rate is not None:
            self.level = min(self.cap, self.level + self.rate)


class AXI4Memory:
    def __init__(self, memory: np.ndarray, *, data_bytes: int, max_burst_beats: int = 256,
                 latency: int = 1, bytes_per_cycle: float | None = None, stall: float = 0.0,
                 seed: int = 0, errors: tuple = ()) -> None:
        if latency < 1:
            raise ValueError(f"latency must be at least 1 cycle, not {latency!r}")
        self.mem = memory
        self.data_bytes = data_bytes
        self.max_burst_beats = max_burst_beats
        self.latency = latency
        self.bytes_per_cycle = bytes_per_cycle
        self.stall = stall
        self.errors = tuple(errors)
        self.rngs = {name: np.random.default_rng([seed, n])
                     for n, name in enumerate(("ar", "r", "aw", "w", "b"))}
        self.ar_log: list[tuple[int, int, int]] = []
        self.aw_log: list[tuple[int, int, int]] = []
        self.r_cycles: list[int] = []
        self.w_cycles: list[int] = []
        self.b_cycles: list[int] = []
        self.cycle = 0

    # ---- helpers ------------------------------------------------------------------------
    def _go(self, channel: str) -> bool:
        return not (self.stall and self.rngs[channel].random() < self.stall)

    def _resp(self, addr: int) -> AXIResp:
        for start, end, resp in self.errors:
            if start <= addr < end:
                return resp
        return AXIResp.OKAY

    def _check_address(self, kind: str, cycle: int, addr: int, length: int, size: int,
                       burst) -> int:
        beats = length + 1
        if burst != AXIBurst.INCR:
            raise ProtocolError(f"{kind} at cycle {cycle}: burst type {burst!r}, expected INCR")
        if 1 << size != self.data_bytes:
            raise ProtocolError(f"{kind} at cycle {cycle}: size {size} is not the "
                                f"{self.data_bytes}-byte bus width")
        if beats > self.max_burst_beats:
            raise ProtocolError(f"{kind} at cycle {cycle}: {beats} beats exceed "
                                f"{self.max_burst_beats}")
        if addr % self.data_bytes:
            raise ProtocolError(f"{kind} at cycle {cycle}: address {addr:#x} is not aligned")
        end = addr + beats * self.data_bytes
        if addr >> 12 != (end - 1) >> 12:
            raise ProtocolError(f"{kind} at cycle {cycle}: burst {addr:#x}+{beats} beats "
                                "crosses a 4 KiB boundary")
        if end > len(self.mem):
            raise ProtocolError(f"{kind} at cycle {cycle}: burst {addr:#x}..{end:#x} is "
                                f"outside the {len(self.mem)}-byte memory")
        return beats

    @staticmethod
    def _check_stable(kind: str, cycle: int, held, now) -> None:
        """`held` is the previous cycle's (valid, payload...) if VALID was not accepted."""
        if held is not None and tuple(now) != tuple(held):
            raise ProtocolError(f"{kind} at cycle {cycle}: VALID dropped or payload changed "
                                f"before READY ({held} -> {now})")

    # ---- read side ----------------------------------------------------------------------
    async def serve_reads(self, ctx, bus) -> None:
        """Background testbench for AR and R."""
        queue: deque[_Burst] = deque()
        bandwidth = _Bandwidth(self.bytes_per_cycle, self.data_bytes)
        held = None
        cycle = 0
        while True:
            arready = self._go("ar")
            ctx.set(bus.arready, arready)
            beat = None
            if queue and queue[0].ready_cycle <= cycle and bandwidth.has_beat() \
                    and self._go("r"):
                head = queue[0]
                addr = head.addr + head.done * self.data_bytes
                beat = head
                ctx.set(bus.rvalid, 1)
                ctx.set(bus.rdata, int.from_bytes(
                    self.mem[addr:addr + self.data_bytes].tobytes(), "little"))
                ctx.set(bus.rresp, self._resp(addr))
                ctx.set(bus.rlast, head.done == head.beats - 1)
                ctx.set(bus.rid, head.ident)
            else:
                ctx.set(bus.rvalid, 0)
            _, _, arvalid, araddr, arlen, arsize, arburst, arid, rready = \
                await ctx.tick().sample(bus.arvalid, bus.araddr, bus.arlen, bus.arsize,
                                        bus.arburst, bus.arid, bus.rready)
            request = (araddr, arlen, arsize, arburst, arid)
            if arvalid:
                self._check_stable("AR", cycle, held, request)
                if arready:
                    beats = self._check_address("AR", cycle, araddr, arlen, arsize, arburst)
                    queue.append(_Burst(cycle + self.latency, araddr, beats, arid))
                    self.ar_log.append((cycle, araddr, arlen))
                    held = None
                else:
                    held = request
            elif held is not None:
                self._check_stable("AR", cycle, held, (None,) * 5)
            if beat is not None and rready:
                bandwidth.take()
                self.r_cycles.append(cycle)
                beat.done += 1
                if beat.done == beat.beats:
                    queue.popleft()
            bandwidth.tick()
            cycle += 1
            self.cycle = cycle

    # ---- write side ---------------------------------------------------------------------
    async def serve_writes(self, ctx, bus) -> None:
        """Background testbench for AW, W and B."""
        addresses: deque[_Burst] = deque()
        beats: deque[tuple[int, int, int]] = deque()
        responses: deque[tuple[int, int, AXIResp]] = deque()
        bandwidth = _Bandwidth(self.bytes_per_cycle, self.data_bytes)
        aw_held = w_held = None
        cycle = 0
        full_strobe = (1 << self.data_bytes) - 1
        while True:
            awready = self._go("aw")
            wready = bandwidth.has_beat() and self._go("w")
            ctx.set(bus.awready, awready)
            ctx.set(bus.wready, wready)
            response = None
            if responses and responses[0][0] <= cycle and self._go("b"):
                response = responses[0]
                ctx.set(bus.bvalid, 1)
                ctx.set(bus.bid, response[1])
                ctx.set(bus.bresp, response[2])
            else:
                ctx.set(bus.bvalid, 0)
            _, _, awvalid, awaddr, awlen, awsize, awburst, awid, wvalid, wdata, wstrb, wlast, \
                bready = await ctx.tick().sample(
                    bus.awvalid, bus.awaddr, bus.awlen, bus.awsize, bus.awburst, bus.awid,
                    bus.wvalid, bus.wdata, bus.wstrb, bus.wlast, bus.bready)
            request = (awaddr, awlen, awsize, awburst, awid)
            if awvalid:
                self._check_stable("AW", cycle, aw_held, request)
                if awready:
                    n = self._check_address("AW", cycle, awaddr, awlen, awsize, awburst)
                    addresses.append(_Burst(0, awaddr, n, awid))
                    self.aw_log.append((cycle, awaddr, awlen))
                    aw_held = None
                else:
                    aw_held = request
            elif aw_held is not None:
                self._check_stable("AW", cycle, aw_held, (None,) * 5)
            if wvalid:
                self._check_stable("W", cycle, w_held, (wdata, wstrb, wlast))
                if wready:
                    if wstrb != full_strobe:
                        raise ProtocolError(f"W at cycle {cycle}: strobe {wstrb:#x}, the "
                                            "engine only writes whole beats")
                    beats.append((wdata, wstrb, wlast))
                    self.w_cycles.append(cycle)
                    bandwidth.take()
                    w_held = None
                else:
                    w_held = (wdata, wstrb, wlast)
            elif w_held is not None:
                self._check_stable("W", cycle, w_held, (None,) * 3)
            while addresses and len(beats) >= addresses[0].beats:
                burst = addresses.popleft()
                resp = AXIResp.OKAY
                for n in range(burst.beats):
                    word, _, last = beats.popleft()
                    if bool(last) != (n == burst.beats - 1):
                        raise ProtocolError(f"W at cycle {cycle}: WLAST={last} on beat {n} of "
                                            f"a {burst.beats}-beat burst")
                    addr = burst.addr + n * self.data_bytes
                    beat_resp = self._resp(addr)
                    if beat_resp == AXIResp.OKAY:
                        self.mem[addr:addr + self.data_bytes] = np.frombuffer(
                            word.to_bytes(self.data_bytes, "little"), np.uint8)
                    elif resp == AXIResp.OKAY:
                        resp = beat_resp
                responses.append((cycle + self.latency, burst.ident, resp))
            if response is not None and bready:
                responses.popleft()
                self.b_cycles.append(cycle)
            bandwidth.tick()
            cycle += 1

    def add_to(self, sim, bus) -> None:
        """Serve `bus` (read, write or full AXI4 members) in `sim` as background testbenches."""
        members = bus.signature.members

        async def reads(ctx):
            await self.serve_reads(ctx, bus)

        async def writes(ctx):
            await self.serve_writes(ctx, bus)

        if "arvalid" in members:
            sim.add_testbench(reads, background=True)
        if "awvalid" in members:
            sim.add_testbench(writes, background=True)
