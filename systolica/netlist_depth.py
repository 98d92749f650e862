"""Long register-to-register paths of a synthesized ECP5 netlist, without place and route.

nextpnr reports one critical path per run, and which one depends on the placement (the
boards' runs differ by 5-10% between commits that do not touch the path). This estimate
lists every endpoint of the Yosys netlist (`top.json` of `systolica synth`) with a delay
from fixed per-cell figures plus a routing hop per net that grows with the net's fan-out,
so the long control chains can be found and fixed in minutes (Yosys only) and compared
before and after a change. The figures are rough (an ECP5 LUT4 about 0.2-0.45 ns, a hop
0.3-1.6 ns after placement): the estimate ranks paths, its nanoseconds are not nextpnr's.

    python -m systolica.netlist_depth build/synth/orangecrab-25f/top.json --top 20

Cells: LUT4, PFUMX, L6MUX21, CCU2C (carry-in to carry-out through the dedicated chain),
TRELLIS_DPR16X4 (asynchronous read) are combinational; TRELLIS_FF, DP16KD (clock-to-out
without output register), a MULT18X18D with output register and I/O are path starts; a
MULT18X18D without registers is combinational.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import Counter
from pathlib import Path

__all__ = ["Delays", "Endpoint", "endpoints", "main"]


@dataclasses.dataclass(frozen=True)
class Delays:
    """Per-cell and per-hop figures in ns (defaults: ECP5 speed grade 6, pessimistic)."""
    lut: float = 0.45
    mux: float = 0.25            # PFUMX / L6MUX21 data input (select: `lut`)
    carry_in: float = 0.55       # CCU2C A/B/C/D input to sum or carry-out
    carry_chain: float = 0.12    # CCU2C carry-in to carry-out
    carry_sum: float = 0.35      # CCU2C carry-in to sum
    lutram_read: float = 0.6
    dsp: float = 3.9             # MULT18X18D without registers
    clk_to_q: float = 0.5
    bram_clk_to_out: float = 5.8
    dsp_clk_to_out: float = 1.0
    setup: float = 0.1
    hop: float = 0.85            # routing of a net with one load
    fanout_step: float = 0.25    # more routing per doubling of the loads


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A register (or RAM/DSP) input and the longest estimated path into it."""
    ns: float
    cell: str
    cell_type: str
    port: str
    path: tuple[str, ...]       # net names from the endpoint back to the path's start

    @property
    def levels(self) -> int:
        return len(self.path) - 1


_START_AT = {"TRELLIS_FF": "clk_to_q", "DP16KD": "bram_clk_to_out"}
_ENDS = {"TRELLIS_FF": ("DI", "CE", "LSR", "M"), "TRELLIS_DPR16X4": ("DI", "WAD", "WRE")}


def _top(netlist: dict) -> dict:
    modules = netlist["modules"]
    for module in modules.values():
        if int(module.get("attributes", {}).get("top", 0) or 0):
            return module
    if len(modules) == 1:
        return next(iter(modules.values()))
    raise ValueError("the netlist has several modules and none is marked top")


def _registered_dsp(cell: dict, which: str) -> bool:
    return cell["parameters"].get(which, "NONE") not in ("NONE", "")


class _Graph:
    def __init__(self, module: dict, delays: Delays) -> None:
        self.cells = module["cells"]
        self.d = delays
        self.names: dict[int, str] = {}
        for name, net in module["netnames"].items():
            for i, bit in enumerate(net["bits"]):
                if isinstance(bit, int):
                    label = name if len(net["bits"]) == 1 else f"{name}[{i}]"
                    old = self.names.get(bit)
                    if old is None or (old[0] == "$") > (label[0] == "$") or (
                            (old[0] == "$") == (label[0] == "$") and len(label) < len(old)):
                        self.names[bit] = label
        self.driver: dict[int, tuple[str, str]] = {}
        self.loads: Counter = Counter()
        for name, cell in self.cells.items():
            directions = cell.get("port_directions", {})
            for port, bits in cell["connections"].items():
                for bit in bits:
                    if isinstance(bit, int):
                        if directions.get(port) == "output":
                            self.driver[bit] = (name, port)
                        else:
                            self.loads[bit] += 1
        self.arrival: dict[int, float] = {}
        self.previous: dict[int, int | None] = {}

    def route(self, bit: int) -> float:
        return self.d.hop + self.d.fanout_step * (max(self.loads[bit], 1).bit_length() - 1)

    def _inputs(self, cell: dict, port: str) -> list[tuple[str, float, bool]] | None:
        """(input port, cell delay, dedicated wire) of a combinational output; None: start."""
        d, kind = self.d, cell["type"]
        if kind == "LUT4":
            return [(p, d.lut, False) for p in "ABCD"]
        if kind == "PFUMX":
            return [("ALUT", d.mux, True), ("BLUT", d.mux, True), ("C0", d.lut, False)]
        if kind == "L6MUX21":
            return [("D0", d.mux, True), ("D1", d.mux, True), ("SD", d.lut, False)]
        if kind == "CCU2C":
            data = [(p, d.carry_in, False) for p in ("A0", "B0", "C0", "D0", "A1", "B1", "C1",
                                                     "D1")]
            return [("CIN", d.carry_chain if port == "COUT" else d.carry_sum, True)] + data
        if kind == "TRELLIS_DPR16X4":
            return [("RAD", d.lutram_read, False)]
        if kind == "MULT18X18D" and not _registered_dsp(cell, "REG_OUTPUT_CLK") \
                and not _registered_dsp(cell, "REG_INPUTA_CLK"):
            return [("A", d.dsp, False), ("B", d.dsp, False)]
        return None

    def _start(self, cell: dict) -> float:
        kind = cell["type"]
        if kind == "MULT18X18D":
            return self.d.dsp_clk_to_out
        return getattr(self.d, _START_AT[kind]) if kind in _START_AT else 0.0

    def arrive(self, bit: int) -> float:
        """Latest estimated arrival at net `bit` (iterative, memoised)."""
        stack = [bit]
        while stack:
            b = stack[-1]
            if b in self.arrival:
                stack.pop()
                continue
            if b not in self.driver:
                self.arrival[b], self.previous[b] = 0.0, None
                stack.pop()
                continue
            name, port = self.driver[b]
            cell = self.cells[name]
            inputs = self._inputs(cell, port)
            if inputs is None:
                self.arrival[b], self.previous[b] = self._start(cell), None
                stack.pop()
                continue
            pending = [i for q, _, _ in inputs for i in cell["connections"].get(q, [])
                       if isinstance(i, int) and i not in self.arrival and i not in stack]
            if pending:
                stack.extend(pending)
                continue
            best, best_bit = 0.0, None
            for q, delay, dedicated in inputs:
                for i in cell["connections"].get(q, []):
                    if not isinstance(i, int):
                        continue
                    # a net still on the stack closes a combinational loop: counts as 0
                    t = self.arrival.get(i, 0.0) + delay + (0.0 if dedicated else self.route(i))
                    if t > best:
                        best, best_bit = t, i
            self.arrival[b], self.previous[b] = best, best_bit
            stack.pop()
        return self.arrival[bit]

    def path(self, bit: int) -> tuple[str, ...]:
        out, seen = [], set()
        current: int | None = bit
        while current is not None and current not in seen:
            seen.add(current)
            out.append(self.names.get(current, f"net{current}"))
            current = self.previous.get(current)
        return tuple(out)


def endpoints(netlist: dict, delays: Delays = Delays()) -> list[Endpoint]:
    """Every endpoint of the netlist's top module with its estimated path, longest first."""
    graph = _Graph(_top(netlist), delays)
    found = []
    for name, cell in graph.cells.items():
        kind = cell["type"]
        if kind in _ENDS:
            ports = _ENDS[kind]
        elif kind == "DP16KD":
            ports = tuple(p for p in cell["connections"] if not p.startswith("DO"))
        elif kind == "MULT18X18D" and _registered_dsp(cell, "REG_INPUTA_CLK"):
            ports = ("A", "B")
        else:
            continue
        for port in ports:
            for bit in cell["connections"].get(port, []):
                if isinstance(bit, int):
                    ns = graph.arrive(bit) + graph.route(bit) + delays.setup
                    found.append(Endpoint(round(ns, 2), name, kind, port, graph.path(bit)))
    found.sort(key=lambda e: (-e.ns, e.cell, e.port))
    return found


def _short(name: str, prefix: str) -> str:
    return name[len(prefix):] if name.startswith(prefix) else name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m systolica.netlist_depth",
        description="Rank the register-to-register paths of a Yosys ECP5 JSON netlist.")
    parser.add_argument("netlist", type=Path, help="top.json written by `systolica synth`")
    parser.add_argument("--top", type=int, default=20, help="distinct paths to print")
    parser.add_argument("--strip", default="board.top.", help="name prefix to leave out")
    parser.add_argument("--chain", action="store_true",
                        help="also print the nets along each path, start first")
    args = parser.parse_args(argv)
    try:
        netlist = json.loads(args.netlist.read_text())
        found = endpoints(netlist)
    except (OSError, ValueError, KeyError) as error:
        parser.exit(2, f"{args.netlist}: not a Yosys JSON netlist ({error})\n")
    histogram = Counter(int(e.ns) for e in found)
    print("endpoints per estimated ns:",
          " ".join(f"{ns}:{histogram[ns]}" for ns in sorted(histogram)))
    shown, seen = 0, set()
    for e in found:
        if shown == args.top:
            break
        key = (e.path[-1], e.path[0].split("[")[0])
        if key in seen:
            continue
        seen.add(key)
        shown += 1
        start, end = _short(e.path[-1], args.strip), _short(e.path[0], args.strip)
        print(f"{e.ns:6.1f} ns {e.levels:3d} levels  {start}  ->  {end}  ({e.cell_type}.{e.port})")
        if args.chain:
            for net in reversed(e.path):
                print(f"          {_short(net, args.strip)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
