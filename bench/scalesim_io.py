"""SCALE-Sim 3.0.0's input and output files: topology CSV, config, layout, COMPUTE_REPORT.csv.

SCALE-Sim ships no topology or config files (TOOLCHAIN.md); these are written from the layer
lists of bench/topologies.py. Its topology format has no padding column: a padded layer is
given with the padded input size (H + 2 pad), which yields the same output size and the same
MACs per output pixel as the padded convolution (the padding zeros are multiplied like data, as
in SCALE-Sim's own topologies).
"""

from __future__ import annotations

from dataclasses import dataclass

from .conv_layers import ConvShape

__all__ = ["topology_csv", "config_text", "LAYOUT_CSV", "LayerReport", "parse_compute_report"]

#: SCALE-Sim 3 opens a layout file even with custom layouts off; a header alone is enough.
LAYOUT_CSV = "Layer name, unused,\n"


def topology_csv(shapes: list[ConvShape]) -> str:
    lines = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
             "Num Filter, Strides,"]
    for s in shapes:
        if "DP" in s.name or "," in s.name:
            # SCALE-Sim splits a layer whose name contains "DP" into depth-wise channels.
            raise ValueError(f"layer name {s.name!r} must not contain 'DP' or ','")
        lines.append(f"{s.name}, {s.height + 2 * s.pad}, {s.width + 2 * s.pad}, {s.kernel}, "
                     f"{s.kernel}, {s.in_channels}, {s.out_channels}, {s.stride},")
    return "\n".join(lines) + "\n"


def config_text(*, run_name: str, array: int, sram_kb: int = 64) -> str:
    """A weight-stationary array x array config. Bandwidth mode CALC: SCALE-Sim computes the
    DRAM bandwidth that avoids stalls, so its cycles are compute cycles (as the issue quotes).
    SRAMs of 64 kB each as in SCALE-Sim's example configs/scale.cfg (they change DRAM traffic,
    not compute cycles)."""
    return f"""[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight: {array}
ArrayWidth: {array}
IfmapSramSzkB: {sram_kb}
FilterSramSzkB: {sram_kb}
OfmapSramSzkB: {sram_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 10
Dataflow: ws
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 100
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 100
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


@dataclass(frozen=True)
class LayerReport:
    """One row of COMPUTE_REPORT.csv."""
    layer: int
    total_cycles_with_prefetch: int
    compute_cycles: int          #: the "Total Cycles" column (what SCALE-Sim prints as compute)
    stall_cycles: int
    overall_util_pct: float
    mapping_efficiency_pct: float
    compute_util_pct: float


def parse_compute_report(text: str) -> list[LayerReport]:
    lines = [line for line in text.splitlines() if line.strip()]
    header = [h.strip() for h in lines[0].split(",") if h.strip()]
    if header[:2] != ["LayerID", "Total Cycles (incl. prefetch)"] or len(header) != 7:
        raise ValueError(f"not a SCALE-Sim 3 COMPUTE_REPORT.csv header: {lines[0]!r}")
    reports = []
    for line in lines[1:]:
        cells = [c.strip() for c in line.split(",") if c.strip()]
        if len(cells) != 7:
            raise ValueError(f"COMPUTE_REPORT.csv row must have 7 values, not {line!r}")
        reports.append(LayerReport(int(cells[0]), int(float(cells[1])), int(float(cells[2])),
                                   int(float(cells[3])), float(cells[4]), float(cells[5]),
                                   float(cells[6])))
    return reports
