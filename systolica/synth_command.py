"""`systolica synth --board NAME`: synthesize, place and route a board design with YoWASP
Yosys and nextpnr and write build/synth/<board>/report.json and report.md; with
`--verilog-only -o FILE.v`, write the board's Verilog for a vendor flow instead."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["SYNTH_COMMAND"]


def _args(p: argparse.ArgumentParser) -> None:
    from hw.boards.boards import BOARDS

    p.add_argument("--board", required=True, choices=sorted(BOARDS),
                   help="board to build for (its config preset has the same name)")
    p.add_argument("--config", default=None,
                   help="override the board's preset with another preset or a .toml file")
    p.add_argument("--verilog-only", action="store_true",
                   help="write the board design's Verilog (-o) and stop")
    p.add_argument("-o", "--output", help="Verilog file for --verilog-only")
    p.add_argument("--out-dir", default=None,
                   help="build folder (default build/synth/<board>)")
    p.add_argument("--target-mhz", type=float, default=None,
                   help="clock nextpnr aims for (default: the config's clock_mhz)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")


def _run(args: argparse.Namespace) -> int:
    from hw.config import ConfigError, load_config
    from systolica.commands import UserError
    from systolica.synth import SynthError, board_verilog, markdown_table, run_synth, \
        write_reports

    try:
        config = None if args.config is None else load_config(args.config)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if args.verilog_only:
        if not args.output:
            raise UserError("--verilog-only needs -o FILE.v")
        Path(args.output).write_text(board_verilog(args.board, config))
        print(f"wrote {args.output} (module board_top)")
        return 0
    out_dir = Path(args.out_dir or Path("build") / "synth" / args.board)
    try:
        report = run_synth(args.board, out_dir=out_dir, config=config,
                           target_mhz=args.target_mhz, seed=args.seed)
    except SynthError as exc:
        raise UserError(str(exc)) from None
    write_reports(report, out_dir)
    print(markdown_table([report]), end="")
    print(f"report: {out_dir / 'report.json'}")
    return 0 if report.fits else 1


SYNTH_COMMAND = ("synthesize, place and route a board design (YoWASP Yosys + nextpnr)", _args,
                 _run)
