"""The demo's chain (systolica/demo.py) on real digits, small enough for a test.

The full LeNet-5 takes 63,671 cycles per image on `tiny`, i.e. minutes per image under
Amaranth's simulator (measured 309 s for one image, then of 92,112 cycles, on a loaded 2-core
machine), so the RTL tests here use LeNet-5's layer kinds at a smaller size (`MiniLeNet`: 16x16
digits, 3,989 cycles per image with ReLU + max pooling, 4,375 with tanh + average pooling),
trained in the test for a few seconds on the packaged MNIST digits (seeded, nothing
downloaded). The real LeNet-5 is checked on the functional model (both flavours) for `default`,
where it runs in a fraction of a second per image; `make demo` runs it on the Verilator RTL.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from compiler.frontend.torch_import import export_onnx
from hw.config import PRESETS
from models.datasets import load_dataset
from models.lenet5 import LeNet5
from systolica import demo
from systolica.demo import (MismatchError, calibration_set, check_bit_exact,
                            first_mismatch, run_demo, run_images)
from systolica.pipeline import compile_onnx
from systolica.runner import run_network

IMAGES = 2


class MiniLeNet(nn.Module):
    """LeNet-5's structure on 16x16 inputs: conv 5x5 1->4 (12x12), pool 2 (6x6), conv 3x3
    4->8 (4x4), pool 2 (2x2), flatten, fully connected 32->10; ReLU + max pooling or
    tanh + average pooling, as `models.lenet5.LeNet5`."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        act = nn.ReLU if variant == "relu-max" else nn.Tanh
        pool = nn.MaxPool2d if variant == "relu-max" else nn.AvgPool2d
        self.body = nn.Sequential(nn.Conv2d(1, 4, 5), act(), pool(2),
                                  nn.Conv2d(4, 8, 3), act(), pool(2),
                                  nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        return self.body(x)


def _train(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = np.random.default_rng(0).permutation(len(x))
    for _ in range(epochs):
        for i in range(0, len(order), 64):
            batch = order[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(torch.from_numpy(x[batch])),
                                        torch.from_numpy(y[batch])).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist")


def _half(x: np.ndarray) -> np.ndarray:
    """32x32 -> 16x16 by 2x2 averaging (the padded digits, as LeNet-5 sees them, halved)."""
    return x.reshape(len(x), 1, 16, 2, 16, 2).mean(axis=(3, 5)).astype(np.float32)


def _mini(digits, variant: str, tmp_path_factory):
    train_x, test_x = _half(digits.train_x), _half(digits.test_x)
    model = _train(MiniLeNet(variant), train_x, digits.train_y, epochs=4)
    path = tmp_path_factory.mktemp(f"mini-{variant}") / "mini.onnx"
    export_onnx(model, (1, 1, 16, 16), path)
    program = compile_onnx(path, PRESETS["tiny"], calibration=calibration_set(train_x, 64))
    return path, program, train_x, test_x


@pytest.fixture(scope="module")
def mini_relu(digits, tmp_path_factory):
    return _mini(digits, "relu-max", tmp_path_factory)


@pytest.fixture(scope="module")
def amaranth_run(mini_relu):
    _, program, _, test_x = mini_relu
    return run_images(program, test_x[:IMAGES], "amaranth")


def test_mini_lenet_learns_and_quantizes(mini_relu, digits):
    """The test network is a real classifier, and int8 tracks float on the whole test split:
    the accuracies below are what the chain carries to the RTL."""
    path, program, _, test_x = mini_relu
    res = run_demo(model=path, test_x=test_x, test_y=digits.test_y,
                   calibration=calibration_set(_half(digits.train_x), 64),
                   config=PRESETS["tiny"], backend="isa", rtl_images=IMAGES, log=lambda _: None)
    assert res.float_accuracy > 0.8
    assert abs(res.float_accuracy - res.int8_accuracy) <= 0.02
    assert res.rtl_images == IMAGES and res.test_images == len(test_x)
    assert res.images_per_second == pytest.approx(100e6 / res.cycles_per_image)


def test_amaranth_equals_functional_model_and_reference(mini_relu, amaranth_run):
    _, program, _, test_x = mini_relu
    ref = run_network(program, test_x[:IMAGES], "reference", progress=False)
    isa = run_images(program, test_x[:IMAGES], "isa")
    check_bit_exact(isa, ref.int8)
    check_bit_exact(amaranth_run, ref.int8)
    check_bit_exact(amaranth_run, isa.int8, what="isa")
    assert all(im.rtl.cycles > 0 for im in amaranth_run.images)


def test_verilator_equals_amaranth_bit_and_cycle(mini_relu, amaranth_run):
    _, program, _, test_x = mini_relu
    vl = run_images(program, test_x[:IMAGES], "verilator")
    check_bit_exact(vl, amaranth_run.int8, what="amaranth")
    assert [im.rtl.cycles for im in vl.images] == [im.rtl.cycles for im in amaranth_run.images]
    assert [im.layer_cycles for im in vl.images] == \
        [im.layer_cycles for im in amaranth_run.images]
    assert [im.rtl.counters for im in vl.images] == \
        [im.rtl.counters for im in amaranth_run.images]


def test_tanh_avg_on_the_rtl(digits, tmp_path_factory):
    """The seed's flavour (tanh through the lookup table, average pooling) on the RTL."""
    _, program, _, test_x = _mini(digits, "tanh-avg", tmp_path_factory)
    ref = run_network(program, test_x[:1], "reference", progress=False)
    check_bit_exact(run_images(program, test_x[:1], "amaranth"), ref.int8)


@pytest.mark.parametrize("variant", ["relu-max", "tanh-avg"])
def test_lenet5_on_default_equals_reference(digits, variant, tmp_path):
    """The real LeNet-5 (one short epoch) compiled for `default`: functional model ==
    reference, spread over two worker processes as the demo does."""
    model = _train(LeNet5(variant=variant), digits.train_x[:1000], digits.train_y[:1000],
                   epochs=1)
    path = tmp_path / "lenet5.onnx"
    export_onnx(model, (1, 1, 32, 32), path)
    program = compile_onnx(path, PRESETS["default"],
                           calibration=calibration_set(digits.train_x, 32))
    ref = run_network(program, digits.test_x[:4], "reference", progress=False)
    check_bit_exact(run_images(program, digits.test_x[:4], "isa", jobs=2), ref.int8)


def test_mismatch_names_the_first_differing_image(mini_relu):
    _, program, _, test_x = mini_relu
    run = run_network(program, test_x[:3], "reference", progress=False)
    want = {n: v.copy() for n, v in run.int8.items()}
    name = next(iter(want))
    assert first_mismatch(run.int8, want) is None
    want[name][1].flat[3] ^= 1
    want[name][2].flat[0] ^= 1
    assert first_mismatch(run.int8, want) == 1
    with pytest.raises(MismatchError, match=r"test image 1: .* 1 of \d+ values differ, first "
                                            r"at flat index 3"):
        check_bit_exact(run, want)


def test_main_reports_and_fails_loudly(digits, tmp_path, monkeypatch, capsys):
    """`python -m systolica.demo` on a real LeNet-5 (functional model, 2 images): exit 0 with
    the report and plot paths last; exit 1 naming the image when an output is corrupted."""
    model = _train(LeNet5(), digits.train_x[:1000], digits.train_y[:1000], epochs=1)
    path = tmp_path / "lenet5.onnx"
    export_onnx(model, (1, 1, 32, 32), path)
    args = ["--model", str(path), "--dataset", "mnist", "--backend", "isa", "--rtl-images",
            "2", "--jobs", "1", "--calibration-images", "16"]
    assert demo.main([*args, "--out", str(tmp_path / "ok")]) == 0
    last = capsys.readouterr().out.splitlines()[-2:]
    assert last == [f"report: {tmp_path / 'ok_report.json'}",
                    f"plot:   {tmp_path / 'ok_layers.png'}"]
    report = json.loads((tmp_path / "ok_report.json").read_text())
    assert report["demo"]["bit_exact"] and report["demo"]["rtl_images"] == 2
    assert (tmp_path / "ok_layers.png").stat().st_size > 0

    def corrupted(*a, **k):
        run = run_images(*a, **k)
        for values in run.int8.values():
            values[1].flat[0] ^= 1
        return run

    monkeypatch.setattr(demo, "run_images", corrupted)
    assert demo.main([*args, "--out", str(tmp_path / "bad")]) == 1
    assert "not bit-exact: test image 1:" in capsys.readouterr().err
