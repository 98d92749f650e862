"""Run a compiled program on one of the machine backends and read its outputs.

The backends execute the same program file on the same DRAM image: `isa` (the functional
model, sim/functional.py), `amaranth` (the RTL under Amaranth's simulator) and `verilator`
(the RTL compiled by Verilator). Inputs and outputs are int8 [C, H, W] arrays, converted to and
from the blocked DRAM layout with hw/layout.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hw.layout import read_tensor, tensor_nbytes, write_tensor
from hw.program import Program

from .dram_model import DramTiming
from .functional import FunctionalMachine, RunStats
from .rtl_result import RtlResult

__all__ = ["MACHINE_BACKENDS", "ProgramRun", "prepare_dram", "run_program"]

MACHINE_BACKENDS = ("isa", "amaranth", "verilator")


@dataclass
class ProgramRun:
    """Outputs by name, plus what the backend measured."""
    backend: str
    outputs: dict[str, np.ndarray]
    seconds: float
    rtl: RtlResult | None = None            #: cycle-accurate backends
    stats: RunStats | None = None           #: the functional model
    extra: dict = field(default_factory=dict)

    @property
    def cycles(self) -> int | None:
        return None if self.rtl is None else self.rtl.cycles


def prepare_dram(program: Program, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The full DRAM (config.dram_bytes) with the program, its segments and the inputs."""
    config = program.config
    dram = np.zeros(config.dram_bytes, np.uint8)
    image = program.dram_image()
    dram[:len(image)] = np.frombuffer(image, np.uint8)
    for info in program.inputs:
        if info.name not in inputs:
            raise ValueError(f"missing input {info.name!r}; the program takes "
                             f"{', '.join(t.name for t in program.inputs)}")
        write_tensor(dram, info, inputs[info.name], config.lanes)
    return dram


def run_program(program: Program, inputs: dict[str, np.ndarray], backend: str, *,
                timing: DramTiming = DramTiming(), vcd: str | None = None) -> ProgramRun:
    if backend not in MACHINE_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(MACHINE_BACKENDS)}, not "
                         f"{backend!r}")
    config = program.config
    dram = prepare_dram(program, inputs)
    start = time.perf_counter()
    rtl, stats, extra = None, None, {}
    if backend == "isa":
        machine = FunctionalMachine(config, dram)
        stats = machine.run(program.instructions)
        dram = machine.dram
    elif backend == "amaranth":
        from .rtl_amaranth import run_amaranth

        rtl = run_amaranth(config, dram, program_address=program.program_address,
                           program_length=len(program.instructions), timing=timing, vcd=vcd)
    else:
        from .rtl_verilator import run_verilator

        regions = [(t.address, tensor_nbytes(t.shape, config.lanes, t.channels))
                   for t in program.outputs]
        rtl, extra = run_verilator(config, dram, program_address=program.program_address,
                                   program_length=len(program.instructions), timing=timing,
                                   regions=regions, trace=vcd)
    seconds = time.perf_counter() - start
    outputs = {t.name: read_tensor(dram, t, config.lanes) for t in program.outputs}
    return ProgramRun(backend=backend, outputs=outputs, seconds=seconds, rtl=rtl, stats=stats,
                      extra=extra)
