"""The `systolica` command: compile networks, run programs, write Verilog, synthesize."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="systolica",
        description="CNN accelerator generator: compile ONNX/PyTorch networks to int8 programs, "
                    "run them on bit-exact simulators, and write the accelerator's Verilog.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from . import commands

    for name, (help_text, add_args, _) in commands.COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    from . import commands

    args = build_parser().parse_args(argv)
    try:
        return commands.COMMANDS[args.command][2](args) or 0
    except commands.UserError as exc:
        print(f"systolica {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
