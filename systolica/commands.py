"""The subcommands of `systolica`: each is (help, add_arguments, run)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from hw.config import ConfigError, load_config
from hw.program import Program, ProgramError

__all__ = ["UserError", "COMMANDS"]


class UserError(Exception):
    """A problem with what the user asked for: printed as one line, no traceback."""


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="default",
                   help="accelerator preset (tiny, default, large) or a .toml file")


def _load_config(spec: str):
    try:
        return load_config(spec)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("program", help="a .sysp program file")


def _info(args: argparse.Namespace) -> int:
    try:
        program = Program.load(args.program)
    except ProgramError as exc:
        raise UserError(str(exc)) from None
    cfg = program.config
    print(f"program {args.program}: config {cfg.name!r} ({cfg.rows}x{cfg.columns}, "
          f"fingerprint {cfg.fingerprint})")
    print(f"  {len(program.instructions)} instructions at DRAM {program.program_address:#x}")
    for s in program.segments:
        print(f"  segment {s.name}: {len(s.data)} bytes at {s.address:#x}")
    for t in program.inputs:
        print(f"  input  {t.name} {t.shape} scale {t.scale:g} at {t.address:#x}")
    for t in program.outputs:
        print(f"  output {t.name} {t.shape} scale {t.scale:g} at {t.address:#x}")
    return 0


def _config_args(p: argparse.ArgumentParser) -> None:
    _config_arg(p)


def _config_cmd(args: argparse.Namespace) -> int:
    print(_load_config(args.config).to_toml(), end="")
    return 0


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "config": ("print an accelerator configuration as TOML", _config_args, _config_cmd),
    "info": ("describe a program file (config, instructions, tensors)", _info_args, _info),
}
