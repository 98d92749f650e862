"""A cycle-based AXI4 slave DRAM model, defined once and shared by every RTL simulation.

The model is a Moore machine: everything it drives in a cycle (`outputs`) depends only on its
state, and `clock` then applies the handshakes that happened at the clock edge. The Amaranth
backend calls it from a testbench; the Verilator harness (sim/verilator/harness.cpp) implements
the same rules in C++, so both give identical cycle counts for the same program.

Timing rules (per channel, reads and writes independent):
- AR and AW are accepted while fewer than `max_outstanding` bursts are queued.
- The first R beat of a burst is valid `latency` cycles after its AR handshake (and not before
  the previous burst's last beat); consecutive beats are `beat_interval` cycles apart, where
  `beat_interval = ceil(bus_bytes / bytes_per_cycle)` models the DRAM bandwidth.
- W beats are accepted once the burst's AW is in, at most one per `beat_interval` cycles; the B
  response is valid `latency` cycles after the last W beat.
- Addresses outside the memory answer DECERR (reads return zeros, writes are dropped).
- `faults` (optional, for error tests): address ranges `(start, end, resp)` whose beats answer
  `resp` (SLVERR or DECERR) the same way; a write burst answers the first such response of
  its beats. Changing `model.faults` between runs is allowed.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["DramTiming", "AxiDramModel", "OKAY", "SLVERR", "DECERR"]

OKAY, SLVERR, DECERR = 0, 2, 3


@dataclass(frozen=True)
class DramTiming:
    """DRAM latency in cycles and bandwidth in bytes per cycle (per direction)."""
    latency: int = 20
    bytes_per_cycle: float = 16.0
    max_outstanding: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.latency, int) or self.latency < 1:
            raise ValueError(f"latency must be an integer >= 1 cycle, not {self.latency!r}")
        if not self.bytes_per_cycle > 0:
            raise ValueError(f"bytes_per_cycle must be positive, not {self.bytes_per_cycle!r}")
        if not isinstance(self.max_outstanding, int) or self.max_outstanding < 1:
            raise ValueError(f"max_outstanding must be an integer >= 1, not "
                             f"{self.max_outstanding!r}")

    def beat_interval(self, bus_bytes: int) -> int:
        return max(1, math.ceil(bus_bytes / self.bytes_per_cycle))


@dataclass
class _Burst:
    id: int
    addr: int
    beats: int
    size: int          # bytes per beat (2**AxSIZE)
    start: int         # first cycle its first beat may move
    done: int = 0      # beats moved


class AxiDramModel:
    """State of the slave plus the memory it serves (a NumPy uint8 array, shared by reference)."""

    def __init__(self, memory: np.ndarray, *, bus_bytes: int, timing: DramTiming = DramTiming(),
                 faults: tuple[tuple[int, int, int], ...] = ()):
        for fault in faults:
            if len(fault) != 3 or fault[2] not in (SLVERR, DECERR) or fault[0] >= fault[1]:
                raise ValueError(f"faults must be (start, end, resp) ranges with start < end "
                                 f"and resp SLVERR ({SLVERR}) or DECERR ({DECERR}), not "
                                 f"{fault!r}")
        self.faults = tuple(faults)
        self.memory = memory
        self.bus_bytes = bus_bytes
        self.timing = timing
        self.interval = timing.beat_interval(bus_bytes)
        self.cycle = 0
        self.reads: deque[_Burst] = deque()
        self.writes: deque[_Burst] = deque()
        self.responses: deque[tuple[int, int, int]] = deque()   # (id, resp, cycle valid)
        self.next_r = 0
        self.next_w = 0
        self.write_resp = OKAY
        self.read_bytes = 0
        self.write_bytes = 0

    # ---- what the slave drives this cycle ----------------------------------------------------
    def _beat_addr(self, burst: _Burst) -> int:
        return burst.addr + burst.done * burst.size

    def _in_range(self, addr: int, size: int) -> bool:
        return 0 <= addr and addr + size <= len(self.memory)

    def _resp(self, addr: int, size: int) -> int:
        """The response to a beat of `size` bytes at `addr` (aligned to `size`)."""
        if not self._in_range(addr, size):
            return DECERR
        for start, end, resp in self.faults:
            if addr < end and start < addr + size:
                return resp
        return OKAY

    def outputs(self) -> dict[str, int]:
        t = self.cycle
        out = {"arready": int(len(self.reads) < self.timing.max_outstanding),
               "awready": int(len(self.writes) < self.timing.max_outstanding),
               "rvalid": 0, "rdata": 0, "rid": 0, "rresp": OKAY, "rlast": 0,
               "wready": 0, "bvalid": 0, "bid": 0, "bresp": OKAY}
        if self.reads and t >= self.reads[0].start and t >= self.next_r:
            burst = self.reads[0]
            addr = self._beat_addr(burst)
            lane = addr % self.bus_bytes - addr % burst.size
            base = addr - addr % burst.size
            resp = self._resp(base, burst.size)
            data = 0
            if resp == OKAY:
                data = int.from_bytes(self.memory[base:base + burst.size].tobytes(), "little")
            out.update(rvalid=1, rdata=data << (8 * lane), rid=burst.id, rresp=resp,
                       rlast=int(burst.done == burst.beats - 1))
        if self.writes and t >= self.next_w:
            out["wready"] = 1
        if self.responses and t >= self.responses[0][2]:
            bid, resp, _ = self.responses[0]
            out.update(bvalid=1, bid=bid, bresp=resp)
        return out

    # ---- the clock edge ----------------------------------------------------------------------
    def clock(self, master: dict[str, int], driven: dict[str, int]) -> None:
        """Apply the handshakes of this edge: `master` holds the master's outputs as sampled at
        the edge, `driven` what `outputs()` returned for this cycle."""
        t = self.cycle
        lat = self.timing.latency
        if master["arvalid"] and driven["arready"]:
            self.reads.append(_Burst(master["arid"], master["araddr"], master["arlen"] + 1,
                                     1 << master["arsize"], t + lat))
        if driven["rvalid"] and master["rready"]:
            burst = self.reads[0]
            burst.done += 1
            self.read_bytes += burst.size
            self.next_r = t + self.interval
            if burst.done == burst.beats:
                self.reads.popleft()
        if master["awvalid"] and driven["awready"]:
            self.writes.append(_Burst(master["awid"], master["awaddr"], master["awlen"] + 1,
                                      1 << master["awsize"], 0))
        if driven["wready"] and master["wvalid"]:
            burst = self.writes[0]
            addr = self._beat_addr(burst)
            base = addr - addr % self.bus_bytes
            resp = self._resp(base, self.bus_bytes)
            if resp == OKAY:
                data = master["wdata"].to_bytes(self.bus_bytes, "little")
                strb = master["wstrb"]
                for i in range(self.bus_bytes):
                    if strb >> i & 1:
                        self.memory[base + i] = data[i]
            elif self.write_resp == OKAY:
                self.write_resp = resp
            burst.done += 1
            self.write_bytes += burst.size
            self.next_w = t + self.interval
            if burst.done == burst.beats:
                self.writes.popleft()
                self.responses.append((burst.id, self.write_resp, t + lat))
                self.write_resp = OKAY
        if driven["bvalid"] and master["bready"]:
            self.responses.popleft()
        self.cycle += 1
