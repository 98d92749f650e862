"""`systolica compile`, `run` and `verilog` end to end on small seeded PyTorch networks (tiny
config), through the console command and through the Python API (systolica.pipeline,
systolica.runner, systolica.report) that the demo and the benchmarks reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compiler.frontend.torch_import import export_onnx
from hw import isa
from hw.config import PRESETS
from hw.isa import Buffer, ErrorCode
from hw.program import Program
from sim.rtl_result import RtlResult
from systolica.runner import layer_cycles, load_qgraph, run_network
from tests.compiler.netlib import depth, ort_outputs
from tests.test_cli import one_line_error, systolica

SHAPE = (1, 3, 10, 10)
TINY_SHAPE = (1, 2, 6, 6)


class Small(nn.Module):
    """conv 3x3 + ReLU, 2x2 max pool, conv 3x3 + ReLU, flatten, fully connected: [1, 7]."""

    def __init__(self, softmax: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(5, 6, 3), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(6 * 3 * 3, 7))
        self.softmax = softmax

    def forward(self, x):
        y = self.body(x)
        return torch.softmax(y, dim=1) if self.softmax else y


class Tiny(nn.Module):
    """One conv + ReLU + 2x2 max pool on a 2x6x6 input: a few hundred cycles for the RTL."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, x):
        return self.body(x)


class Square(nn.Module):
    def forward(self, x):
        return x * x


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """ONNX exports, calibration and input arrays, and the compiled tiny programs."""
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(1)
    for name, module, shape in (("small", Small(), SHAPE), ("tiny", Tiny(), TINY_SHAPE),
                                ("square", Square(), TINY_SHAPE)):
        torch.manual_seed(0)
        export_onnx(module, shape, d / f"{name}.onnx")
    torch.manual_seed(0)
    export_onnx(Small(softmax=True), SHAPE, d / "softmax.onnx")
    np.save(d / "calib.npy", rng.standard_normal((6, *SHAPE[1:])).astype(np.float32))
    np.save(d / "x3.npy", np.load(d / "calib.npy")[:3])
    np.save(d / "tiny_x.npy", rng.standard_normal((1, *TINY_SHAPE[1:])).astype(np.float32))
    for name in ("small", "tiny"):
        result = systolica("compile", str(d / f"{name}.onnx"), "-o", str(d / f"{name}.sysp"),
                           "--config", "tiny", "--calibration", str(d / "calib.npy")
                           if name == "small" else str(d / "tiny_x.npy"))
        assert result.returncode == 0, result.stderr
        (d / f"{name}.compile.txt").write_text(result.stdout)
    return d


def test_compile_prints_the_layers(work):
    out = (work / "small.compile.txt").read_text()
    assert "for config 'tiny' (4x4)" in out
    lines = out.splitlines()
    assert lines[1].split()[:4] == ["layer", "kind", "MACs", "tiles"]
    assert sum(line.split()[1] == "conv" for line in lines[3:-1]) == 3
    assert lines[-1].startswith("total")
    program = Program.load(work / "small.sysp")
    assert program.meta["model"]["outputs"][0]["shape"] == [1, 7]
    assert program.meta["model"]["input"]["shape"] == list(SHAPE)


def test_compile_without_calibration_warns(work, tmp_path):
    result = systolica("compile", str(work / "tiny.onnx"), "-o", str(tmp_path / "t.sysp"),
                       "--config", "tiny")
    assert result.returncode == 0, result.stderr
    assert "warning: no --calibration given" in result.stderr
    assert "seeded standard-normal" in result.stderr


def test_reference_equals_isa_and_onnxruntime(work):
    program = Program.load(work / "small.sysp")
    x = np.load(work / "calib.npy")
    ref = run_network(program, x, "reference", progress=False)
    isa = run_network(program, x, "isa", progress=False)
    (name,) = ref.outputs
    assert ref.outputs[name].shape == (6, 7) and ref.outputs[name].dtype == np.float32
    assert np.array_equal(ref.int8[name], isa.int8[name])
    assert np.array_equal(ref.outputs[name], isa.outputs[name])
    # The bound of docs/compiler.md: |ref - float| <= 2 (D + 1) s_out, on calibration images.
    qgraph = load_qgraph(program)
    (floats,) = ort_outputs(str(work / "small.onnx"), x)
    bound = 2 * (depth(qgraph) + 1) * qgraph.tensors[name].scale
    assert np.abs(ref.outputs[name] - floats).max() <= bound


def test_run_cli_batch_report_and_plot(work, tmp_path):
    y, rep, png = tmp_path / "y.npy", tmp_path / "r.json", tmp_path / "p.png"
    result = systolica("run", str(work / "small.sysp"), "--input", str(work / "x3.npy"),
                       "--backend", "isa", "--output", str(y), "--report", str(rep),
                       "--plot", str(png))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "backend isa, config 'tiny' (4x4), 3 image(s)" in out
    assert "est." in out and "does not measure cycles" in out
    ys = np.load(y)
    assert ys.shape == (3, 7) and ys.dtype == np.float32
    program = Program.load(work / "small.sysp")
    api = run_network(program, np.load(work / "x3.npy"), "reference", progress=False)
    assert np.array_equal(ys, next(iter(api.outputs.values())))
    report = json.loads(rep.read_text())
    assert report["backend"] == "isa" and report["config"]["name"] == "tiny"
    assert report["total"]["images"] == 3 and report["total"]["cycles_source"] == "estimate"
    assert [r["name"] for r in report["layers"]] == [x["name"] for x in program.layers]
    assert all(r["cycles_source"] == "estimate" for r in report["layers"])
    assert len(report["images"]) == 3 and report["total"]["wall_seconds"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def amaranth_run(work) -> dict:
    """`systolica run --backend amaranth` on one image of the tiny network (~10 s)."""
    d = work
    result = systolica("run", str(d / "tiny.sysp"), "--input", str(d / "tiny_x.npy"),
                       "--backend", "amaranth", "--output", str(d / "tiny_am.npy"),
                       "--report", str(d / "tiny_am.json"))
    assert result.returncode == 0, result.stderr
    return {"stdout": result.stdout, "y": np.load(d / "tiny_am.npy"),
            "report": json.loads((d / "tiny_am.json").read_text())}


def test_amaranth_equals_isa_with_measured_cycles(work, amaranth_run):
    program = Program.load(work / "tiny.sysp")
    isa = run_network(program, np.load(work / "tiny_x.npy"), "isa", progress=False)
    assert np.array_equal(amaranth_run["y"], next(iter(isa.outputs.values())))
    report = amaranth_run["report"]
    image = report["images"][0]
    assert image["cycles"] > 0 and sum(image["layer_cycles"]) == image["cycles"]
    assert all(c >= 0 for c in image["layer_cycles"])
    assert set(image["counters"]) >= {"cycles", "array_busy", "load_wait", "store_wait",
                                      "weight_load", "dependency_wait"}
    assert report["total"]["cycles_source"] == "measured"
    assert [r["cycles"] for r in report["layers"]] == image["layer_cycles"]
    out = amaranth_run["stdout"]
    assert "est." not in out and f"{image['cycles']} cycles, array busy" in out
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert str(image["cycles"]) in total.split()


@pytest.mark.slow  # the first Verilator build of a config takes ~80 s (cached afterwards)
def test_verilator_equals_amaranth(work, amaranth_run):
    program = Program.load(work / "tiny.sysp")
    vl = run_network(program, np.load(work / "tiny_x.npy"), "verilator", progress=False)
    assert np.array_equal(next(iter(vl.outputs.values())), amaranth_run["y"])
    image = amaranth_run["report"]["images"][0]
    assert vl.images[0].rtl.cycles == image["cycles"]
    assert vl.images[0].layer_cycles == image["layer_cycles"]


def test_host_fallback_softmax(work, tmp_path):
    model, program = work / "softmax.onnx", tmp_path / "sm.sysp"
    line = one_line_error(systolica("compile", str(model), "-o", str(program), "--config",
                                    "tiny", "--calibration", str(work / "calib.npy")),
                          "compile")
    assert "(Softmax)" in line and "--host-fallback" in line
    result = systolica("compile", str(model), "-o", str(program), "--config", "tiny",
                       "--calibration", str(work / "calib.npy"), "--host-fallback")
    assert result.returncode == 0, result.stderr
    assert "on the host after the program:" in result.stdout
    loaded = Program.load(program)
    x = np.load(work / "x3.npy")
    ref = run_network(loaded, x, "reference", progress=False)
    isa = run_network(loaded, x, "isa", progress=False)
    (name,) = ref.outputs
    assert np.array_equal(ref.outputs[name], isa.outputs[name])
    assert ref.outputs[name].shape == (3, 7)
    assert np.allclose(ref.outputs[name].sum(axis=1), 1.0, atol=0.05)


def test_compile_errors(work, tmp_path):
    out = str(tmp_path / "p.sysp")
    line = one_line_error(systolica("compile", str(tmp_path / "none.onnx"), "-o", out),
                          "compile")
    assert "cannot read" in line and "none.onnx" in line
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf" * 10)
    assert "not" in one_line_error(systolica("compile", str(junk), "-o", out), "compile")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 3, 9, 9), np.float32))
    line = one_line_error(systolica("compile", str(work / "small.onnx"), "-o", out,
                                    "--calibration", str(bad)), "compile")
    assert "calibration array must be" in line and "[4, 3, 9, 9]" in line
    line = one_line_error(systolica("compile", str(work / "square.onnx"), "-o", out,
                                    "--config", "tiny"), "compile")
    assert "unsupported operator 'Mul'" in line
    assert "neither a preset" in one_line_error(
        systolica("compile", str(work / "small.onnx"), "-o", out, "--config", "huge"),
        "compile")
    assert not Path(out).exists()


def test_run_errors(work, tmp_path):
    program = work / "small.sysp"
    x = str(work / "x3.npy")
    line = one_line_error(systolica("run", str(program), "--input", x, "--backend", "fpga"),
                          "run")
    assert "reference, isa, amaranth, verilator" in line and "'fpga'" in line
    corrupt = tmp_path / "c.sysp"
    blob = bytearray(program.read_bytes())
    blob[len(blob) // 3] ^= 1
    corrupt.write_bytes(bytes(blob))
    assert "checksum" in one_line_error(systolica("run", str(corrupt), "--input", x), "run")
    wrong = tmp_path / "w.npy"
    np.save(wrong, np.zeros((2, 3, 8, 8), np.float32))
    line = one_line_error(systolica("run", str(program), "--input", str(wrong)), "run")
    assert "input must be float32 [N, 3, 10, 10]" in line and "[2, 3, 8, 8]" in line
    line = one_line_error(systolica("run", str(program), "--input", str(tmp_path / "no.npy")),
                          "run")
    assert "cannot read input" in line


def test_verilog_writes_module_top(tmp_path):
    path = tmp_path / "x.v"
    result = systolica("verilog", "--config", "tiny", "-o", str(path))
    assert result.returncode == 0, result.stderr
    text = path.read_text()
    assert "module top(" in text.replace(" (", "(")
    assert "config 'tiny' (4x4): module top" in result.stdout


def test_layer_cycles_from_a_retirement_trace():
    """Two layers and a concat between them; the second layer's load retires early (prefetch
    under the first layer), so each layer ends at its latest retirement."""
    load = isa.Load(buffer=Buffer.IBUF, dram_addr=0, size0=1, count1=1, count2=1)
    add = isa.Add(a_addr=0, b_addr=0, count=1)
    store = isa.Store(buffer=Buffer.OBUF, dram_addr=64, size0=1, count1=1, count2=1)
    program = Program(config=PRESETS["tiny"],
                      instructions=[load, add, store, load, add, store, isa.End()],
                      layers=[{"name": "a", "first_instruction": 0},
                              {"name": "cat", "first_instruction": 3},
                              {"name": "b", "first_instruction": 3}])
    trace = [(10, 0b001), (15, 0b001), (20, 0b010), (25, 0b100), (40, 0b010), (50, 0b100)]
    rtl = RtlResult(error=ErrorCode.NONE, error_index=0, counters={"cycles": 60},
                    dram_read_bytes=0, dram_write_bytes=0, retirements=tuple(trace))
    # b ends at 50, 25 cycles after a; a takes the rest of the 60: start to 25 plus the tail.
    assert layer_cycles(program, rtl) == [35, 0, 25]
