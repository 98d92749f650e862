"""The subcommands of `systolica`: each is (help, add_arguments, run)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from compiler.errors import CompileError
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
        if t.packing is not None:
            p = t.packing
            print(f"         packed by the host: {p.taps}x{p.taps} taps every {p.step} "
                  f"pixels into channels, stored as {t.stored_shape}")
    for t in program.outputs:
        print(f"  output {t.name} {t.shape} scale {t.scale:g} at {t.address:#x}")
    return 0


def _config_args(p: argparse.ArgumentParser) -> None:
    _config_arg(p)


def _config_cmd(args: argparse.Namespace) -> int:
    print(_load_config(args.config).to_toml(), end="")
    return 0


def _load_npy(path: str, what: str) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise UserError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UserError(f"{what} {path!r} is not a .npy array: {exc}") from None
    if not isinstance(data, np.ndarray):
        raise UserError(f"{what} {path!r} is an .npz archive; expected one .npy array")
    return data


def _compile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an ONNX model file (.onnx)")
    p.add_argument("-o", "--output", required=True, help="the program file to write (.sysp)")
    _config_arg(p)
    p.add_argument("--calibration", metavar="DATA.npy",
                   help="float32 NCHW calibration images (default: 8 seeded noise images, "
                        "fine for tests, wrong for a real network)")
    p.add_argument("--host-fallback", action="store_true",
                   help="run Softmax and LRN on the host after the program")


def _compile(args: argparse.Namespace) -> int:
    from compiler.compile import layer_report
    from compiler.frontend import load_onnx

    from .pipeline import compile_network

    config = _load_config(args.config)
    calibration = None
    if args.calibration is not None:
        calibration = _load_npy(args.calibration, "calibration array")
    try:
        program = compile_network(load_onnx(args.model), config, calibration=calibration,
                                  host_fallback=args.host_fallback)
    except CompileError as exc:
        raise UserError(str(exc)) from None
    if calibration is None:
        print("systolica compile: warning: no --calibration given; quantized with 8 seeded "
              "standard-normal images (pass real images for a real network)", file=sys.stderr)
    try:
        program.save(args.output)
    except OSError as exc:
        raise UserError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    except ProgramError as exc:
        raise UserError(str(exc)) from None
    print(f"compiled {args.model} for config {config.name!r} ({config.rows}x{config.columns}): "
          f"{len(program.instructions)} instructions, "
          f"{os.path.getsize(args.output)} bytes -> {args.output}")
    host = program.meta["model"]["host_ops"]
    if host:
        names = ", ".join(f"{h['name']} ({h['op_type']})" for h in host)
        print(f"on the host after the program: {names}")
    print(layer_report(program))
    return 0


def _run_args(p: argparse.ArgumentParser) -> None:
    from sim.dram_model import DramTiming

    from .runner import BACKENDS

    d = DramTiming()
    p.add_argument("program", help="a .sysp program file from `systolica compile`")
    p.add_argument("--input", required=True, metavar="X.npy",
                   help="float32 NCHW images (any batch size)")
    p.add_argument("--backend", default="isa", metavar="NAME",
                   help=f"{' | '.join(BACKENDS)} (default isa)")
    p.add_argument("--output", metavar="Y.npy",
                   help="float32 outputs stacked over the batch (.npz by name when the "
                        "network has several outputs)")
    p.add_argument("--report", metavar="REPORT.json", help="per-layer and total figures")
    p.add_argument("--plot", metavar="FILE.png", help="per-layer cycles and utilization")
    p.add_argument("--dram-latency", type=int, default=d.latency, metavar="N",
                   help=f"RTL backends: DRAM latency in cycles (default {d.latency})")
    p.add_argument("--dram-bytes-per-cycle", type=float, default=d.bytes_per_cycle,
                   metavar="B", help=f"RTL backends: DRAM bandwidth per direction "
                                     f"(default {d.bytes_per_cycle:g})")


def _run(args: argparse.Namespace) -> int:
    from sim.dram_model import DramTiming

    from . import report
    from .runner import BACKENDS, RunInputError, load_qgraph, run_network

    if args.backend not in BACKENDS:
        raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, not "
                        f"{args.backend!r}")
    try:
        timing = DramTiming(latency=args.dram_latency,
                            bytes_per_cycle=args.dram_bytes_per_cycle)
    except ValueError as exc:
        raise UserError(f"DRAM timing: {exc}") from None
    try:
        program = Program.load(args.program)
        qgraph = load_qgraph(program)
    except ProgramError as exc:
        raise UserError(f"{args.program}: {exc}" if args.program not in str(exc)
                        else str(exc)) from None
    x = _load_npy(args.input, "input")
    try:
        run = run_network(program, x, args.backend, timing=timing, qgraph=qgraph)
    except (RunInputError, ProgramError) as exc:
        raise UserError(str(exc)) from None
    print(report.format_table(run))
    if args.output:
        _save_outputs(args.output, run.outputs)
        print(f"outputs -> {args.output}")
    if args.report:
        report.write_report(run, args.report)
        print(f"report -> {args.report}")
    if args.plot:
        report.plot(run, args.plot)
        print(f"plot -> {args.plot}")
    return 0


def _save_outputs(path: str, outputs: dict[str, np.ndarray]) -> None:
    try:
        # Through a file object: np.save/np.savez would append .npy/.npz to a bare path.
        with open(path, "wb") as f:
            if len(outputs) == 1:
                np.save(f, next(iter(outputs.values())))
            else:
                np.savez(f, **outputs)
    except OSError as exc:
        raise UserError(f"cannot write {path!r}: {exc.strerror or exc}") from None


def _verilog_args(p: argparse.ArgumentParser) -> None:
    _config_arg(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE.v",
                   help="where to write the Verilog of the top level (module `top`)")


def _verilog(args: argparse.Namespace) -> int:
    from sim.rtl_verilator import top_verilog

    config = _load_config(args.config)
    text = top_verilog(config)
    try:
        Path(args.output).write_text(text)
    except OSError as exc:
        raise UserError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    print(f"config {config.name!r} ({config.rows}x{config.columns}): module top, "
          f"{text.count(chr(10))} lines -> {args.output}")
    return 0


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "config": ("print an accelerator configuration as TOML", _config_args, _config_cmd),
    "info": ("describe a program file (config, instructions, tensors)", _info_args, _info),
    "compile": ("compile an ONNX model to an int8 program file", _compile_args, _compile),
    "run": ("run a program on float images with a backend (per-layer table)",
            _run_args, _run),
    "verilog": ("write the accelerator's top-level Verilog", _verilog_args, _verilog),
}

# Board synthesis lives in its own module (systolica/synth_command.py).
from .synth_command import SYNTH_COMMAND  # noqa: E402

COMMANDS["synth"] = SYNTH_COMMAND
