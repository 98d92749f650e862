"""What a cycle-accurate run reports, the same for the Amaranth and the Verilator backend."""

from __future__ import annotations

from dataclasses import dataclass

from hw.axi.csr import COUNTERS
from hw.isa import ErrorCode

__all__ = ["RtlResult", "RtlTimeout"]


class RtlTimeout(RuntimeError):
    """The accelerator did not raise its interrupt within the cycle budget."""


@dataclass(frozen=True)
class RtlResult:
    """Status and performance counters read from the CSRs after the run, plus the DRAM
    traffic the DRAM model saw. `counters` holds every hw.axi.csr.COUNTERS entry by name:
    cycles (start to done), array_busy, load_wait, store_wait, weight_load, dependency_wait."""
    error: ErrorCode
    error_index: int
    counters: dict[str, int]
    dram_read_bytes: int
    dram_write_bytes: int
    #: (cycle, mask) for every cycle a unit finished instructions: bit 0 load, 1 compute,
    #: 2 store (the top level's `retire` output); cycles count from the end of reset.
    retirements: tuple[tuple[int, int], ...] = ()

    @property
    def cycles(self) -> int:
        return self.counters["cycles"]

    @classmethod
    def from_registers(cls, values: dict[str, int], *, read_bytes: int, write_bytes: int,
                       retirements=()) -> RtlResult:
        return cls(error=ErrorCode(values["error_code"]), error_index=values["error_index"],
                   counters={name: values[name] for name in COUNTERS},
                   dram_read_bytes=read_bytes, dram_write_bytes=write_bytes,
                   retirements=tuple(retirements))
