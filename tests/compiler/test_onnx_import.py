"""The ONNX and PyTorch front ends: every exporter's output imports, and the float IR computes
what onnxruntime computes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from compiler.errors import CompileError
from compiler.frontend import from_torch, load_onnx
from compiler.graph import OpKind, run_float

from . import netlib
from .conftest import EXPORTS
from .onnx_builders import old_style


def _images(shape: tuple[int, ...], n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n,) + tuple(shape[1:])).astype(
        np.float32)


@pytest.mark.parametrize("name,exporter", EXPORTS, ids=[f"{n}-{e}" for n, e in EXPORTS])
def test_float_import_matches_onnxruntime(exports, name, exporter):
    path = exports[name, exporter]
    graph = load_onnx(path)
    x = _images(netlib.MODELS[name][1])
    want = netlib.ort_outputs(path, x)
    got = run_float(graph, x)
    for w, g in zip(want, got.values()):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * np.abs(w).max())


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_old_opset_model(auto_pad):
    """Opset 7 with weights as graph inputs, auto_pad, a Constant/Shape flatten subgraph,
    bias as Add, MatMul + Add, Identity, Dropout and a dynamic batch."""
    data = old_style(auto_pad).SerializeToString()
    graph = load_onnx(data)
    assert graph.tensors[graph.inputs[0]].shape == (1, 3, 9, 9)
    assert [n.kind for n in graph.nodes] == [
        OpKind.CONV, OpKind.ADD, OpKind.RELU, OpKind.IDENTITY, OpKind.MAXPOOL, OpKind.DROPOUT,
        OpKind.RESHAPE, OpKind.GEMM, OpKind.ADD, OpKind.SIGMOID]
    x = _images((1, 3, 9, 9), n=4)
    np.testing.assert_allclose(run_float(graph, x)["y"], netlib.ort_outputs(data, x)[0],
                               rtol=1e-5, atol=1e-6)


def test_same_padding_resolved():
    conv = {a: load_onnx(old_style(a).SerializeToString()).nodes[0].attrs["pads"]
            for a in ("SAME_UPPER", "SAME_LOWER", "VALID")}
    # 9 pixels, kernel 3, stride 2: 5 outputs need 2 pad pixels, split evenly.
    assert conv == {"SAME_UPPER": (1, 1, 1, 1), "SAME_LOWER": (1, 1, 1, 1), "VALID": (0, 0, 0, 0)}
    pool = {a: load_onnx(old_style(a).SerializeToString()).nodes[4].attrs["pads"]
            for a in ("SAME_UPPER", "SAME_LOWER")}
    # 5 pixels, window 2, stride 2: one pad pixel, at the end (UPPER) or the start (LOWER).
    assert pool == {"SAME_UPPER": (0, 0, 1, 1), "SAME_LOWER": (1, 1, 0, 0)}


def test_external_data_and_bytes(exports):
    """The new exporter writes weights to a side .onnx.data file: read through the path; the
    same model saved inline also loads from bytes; bytes of the external form are refused."""
    path = exports["residual", "dynamo"]
    assert os.path.exists(path + ".data")
    from_path = load_onnx(path)
    with pytest.raises(CompileError, match="external data"):
        load_onnx(Path(path).read_bytes())
    from_bytes = load_onnx(onnx.load(path).SerializeToString())
    x = _images(netlib.MODELS["residual"][1])
    np.testing.assert_array_equal(run_float(from_path, x)[from_path.outputs[0]],
                                  run_float(from_bytes, x)[from_bytes.outputs[0]])


def test_from_torch_both_exporters():
    model, shape = netlib.build("bn_relu_max")
    x = _images(shape)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    for dynamo in (False, True):
        graph = from_torch(model, shape, dynamo=dynamo)
        np.testing.assert_allclose(run_float(graph, x)[graph.outputs[0]], want, rtol=1e-4,
                                   atol=1e-5)


def test_dynamic_batch_compiles_for_one():
    graph = load_onnx(old_style("VALID", batch="batch").SerializeToString())
    assert graph.tensors[graph.inputs[0]].shape[0] == 1
    model, shape = netlib.build("conv3s2")
    with pytest.raises(CompileError, match="fixed batch of 2"):
        from_torch(model, (2,) + shape[1:])
