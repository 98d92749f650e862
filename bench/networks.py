"""Whole seed networks for the benchmarks: compiled programs (cached on disk) and their figures.

A network of models/imagenet.py (LeNet-5 included) is built with seeded random weights at
batch 1 and the papers' input size, exported to ONNX, calibrated on CALIBRATION_IMAGES seeded
N(0, 1) images (quantization quality does not matter for performance: the cycle counts do not
depend on the values) and compiled for a configuration with systolica.pipeline.compile_network,
the path of `systolica compile`. A compile takes seconds (LeNet-5, NIN) to three minutes (VGG-16
on `default`), so each program is cached under build/networks/ by network, config fingerprint
and a hash of the sources that shape it.

The figures of a program (pure functions, no simulation):
- `dram_traffic`: bytes its LOADs read and its STOREs write (as the functional model counts
  them; instruction fetch not included);
- `compulsory_bytes`: the network's minimum traffic: every constant segment (weights, per-channel
  parameters, lookup tables) read once, the network input read once and its outputs written
  once, tensors in their blocked DRAM layout (channels padded to the array's lanes);
- `layer_cycles`: per layer of program.layers, the cycles the cycle model attributes to it (its
  last done cycle minus the latest done cycle of every earlier layer), as
  systolica.runner.layer_cycles does from an RTL retirement trace.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from hw.config import AcceleratorConfig
from hw.isa import Load, Store, buffer_word_bytes
from hw.layout import tensor_nbytes
from hw.program import Program

from .conv_layers import ConvShape

__all__ = ["NETWORKS", "CALIBRATION_IMAGES", "CACHE", "source_hash", "compile_seeded",
           "cached_program", "dram_traffic", "compulsory_bytes", "layer_cycles",
           "conv_shapes", "compile_module", "pct"]

#: The seed networks (the names of models.imagenet.NETWORKS, restated so that listing the
#: benchmarks does not import torch), in the order the tables list them.
NETWORKS = ("lenet5", "alexnet", "vgg16", "resnet18", "resnet50", "nin", "googlenet")
CALIBRATION_IMAGES = 2
_ROOT = Path(__file__).resolve().parents[1]
CACHE = _ROOT / "build" / "networks"
#: Scratch words for the token scheduler's barriers: not part of the network's data.
_SCRATCH = "scratch"


def pct(part: float, whole: float) -> float | None:
    """100 * part / whole to two decimals (None when `whole` is 0)."""
    return round(100.0 * part / whole, 2) if whole else None


#: The hw/ modules the compiler imports (the RTL's own sources do not change a program).
_HW_CONTRACTS = ("arith", "config", "input_packing", "isa", "layout", "program")


def source_hash() -> str:
    """A hash of every source a compiled network depends on: the compiler, the networks, the
    hw/ modules the compiler imports, the pipeline, and the calibration set's size."""
    files = sorted([*(_ROOT / "compiler").rglob("*.py"), *(_ROOT / "models").glob("*.py"),
                    *(_ROOT / "hw" / f"{name}.py" for name in _HW_CONTRACTS),
                    _ROOT / "systolica" / "pipeline.py"])
    digest = hashlib.sha256(f"calibration {CALIBRATION_IMAGES}\0".encode())
    for path in files:
        digest.update(str(path.relative_to(_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def compile_module(module, input_shape: tuple[int, ...], config: AcceleratorConfig, *,
                   seed: int = 0) -> Program:
    """A torch module (evaluation mode) calibrated on CALIBRATION_IMAGES seeded N(0, 1) images
    of `input_shape` (NCHW, N = 1) and compiled for `config` through
    systolica.pipeline.compile_network (raises compiler.errors.CompileError)."""
    import torch

    from compiler.frontend import from_torch
    from systolica.pipeline import compile_network

    torch.set_num_threads(1)
    graph = from_torch(module, input_shape)
    rng = np.random.default_rng(seed)
    calibration = rng.standard_normal((CALIBRATION_IMAGES, *input_shape[1:])).astype(np.float32)
    return compile_network(graph, config, calibration=calibration)


def compile_seeded(network: str, config: AcceleratorConfig, *, seed: int = 0) -> Program:
    """The network of models/imagenet.py built with seeded weights, compiled by
    `compile_module`."""
    from models.imagenet import build

    model, shape = build(network, seed=seed)
    return compile_module(model, shape, config, seed=seed)


def cached_program(network: str, config: AcceleratorConfig, *,
                   cache: Path = CACHE) -> tuple[Program, float, bool]:
    """(program, compile wall seconds, whether it came from the cache). The wall time is the
    one measured when the program was compiled (export, calibration, quantization, compile).
    Compiling replaces the cached programs of older sources for this network and config."""
    stem = cache / f"{network}-{config.name}-{config.fingerprint}-{source_hash()}"
    program_path, meta_path = stem.with_suffix(".sysp"), stem.with_suffix(".json")
    if program_path.exists() and meta_path.exists():
        seconds = json.loads(meta_path.read_text())["compile_seconds"]
        return Program.from_bytes(program_path.read_bytes(), config=config,
                                  source=str(program_path)), seconds, True
    start = time.perf_counter()
    program = compile_seeded(network, config)
    seconds = time.perf_counter() - start
    cache.mkdir(parents=True, exist_ok=True)
    # A program of older sources or another config of the same name is stale: VGG-16's
    # program file alone is 0.28 GB.
    for stale in cache.glob(f"{network}-{config.name}-*"):
        stale.unlink()
    program.save(program_path)
    meta_path.write_text(json.dumps({"network": network, "config": config.name,
                                     "compile_seconds": round(seconds, 2)}) + "\n")
    return program, seconds, False


def dram_traffic(program: Program) -> tuple[int, int]:
    """(bytes read by LOADs, bytes written by STOREs) of the whole program."""
    read = write = 0
    for instr in program.instructions:
        if isinstance(instr, (Load, Store)):
            nbytes = (instr.size0 * instr.count1 * instr.count2
                      * buffer_word_bytes(program.config, instr.buffer))
            if isinstance(instr, Load):
                read += nbytes
            else:
                write += nbytes
    return read, write


def compulsory_bytes(program: Program) -> int:
    """Constant segments once (the barrier scratch excluded), inputs once and outputs once."""
    lanes = program.config.lanes
    constants = sum(len(s.data) for s in program.segments if s.name != _SCRATCH)
    tensors = sum(tensor_nbytes(t.shape, lanes, t.channels)
                  for t in (*program.inputs, *program.outputs))
    return constants + tensors


def layer_cycles(layers: list[dict]) -> list[int]:
    """Cycles attributed to each layer from the cycle model's per-layer spans
    (`sim.perf.predict(...).layers`: "end" = the layer's last done cycle; a layer without
    instructions has none and gets 0): end(i) minus the latest end of the layers before it, 0
    when the layer finished under an earlier one's shadow; the first layer counts from 0."""
    out, latest = [], 0
    for layer in layers:
        end = layer.get("end")
        if end is None or end <= latest:
            out.append(0)
            continue
        out.append(end - latest)
        latest = end
    return out


def conv_shapes(program: Program) -> dict[str, ConvShape]:
    """The shape of every convolution of the quantized graph the program carries, by layer
    name (fully connected layers included: the compiler makes them convolutions over their
    input's feature map; `pad` is the top padding)."""
    from compiler.qgraph import QConv
    from systolica.runner import load_qgraph

    qgraph = load_qgraph(program)
    shapes = {}
    for op in qgraph.ops:
        if isinstance(op, QConv):
            out_channels, in_channels, kernel, _ = op.weight.shape
            _, height, width = qgraph.tensors[op.input].shape
            shapes[op.name] = ConvShape(op.name, int(in_channels), int(height), int(width),
                                        int(kernel), int(out_channels), int(op.stride),
                                        int(op.pads[0]))
    return shapes
