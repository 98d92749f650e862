"""Malformed input stops compilation with a CompileError whose message says what and where."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from compiler.errors import CompileError
from compiler.frontend import from_torch, load_onnx
from compiler.quantize import quantize

from .onnx_builders import make_model


def _conv_model(**overrides):
    rng = np.random.default_rng(0)
    parts = {
        "nodes": [helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c"], ["y"], name="relu1")],
        "inputs": [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        "outputs": [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        "inits": {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32)},
    }
    parts.update(overrides)
    return make_model(parts["nodes"], parts["inputs"], parts["outputs"], parts["inits"],
                      value_info=parts.get("value_info", ())).SerializeToString()


def test_valid_model_loads():
    assert [n.name for n in load_onnx(_conv_model()).nodes] == ["conv1", "relu1"]


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.onnx"
    path.write_bytes(_conv_model()[:150])
    with pytest.raises(CompileError, match="not a valid ONNX model"):
        load_onnx(path)


def test_not_onnx(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is a text file, not a network\n" * 20)
    with pytest.raises(CompileError, match="not .*ONNX"):
        load_onnx(str(path))
    with pytest.raises(CompileError, match="cannot read"):
        load_onnx(str(tmp_path / "missing.onnx"))


def test_missing_initializer():
    with pytest.raises(CompileError, match=r"node 'conv1' \(Conv\): input 'w' .*missing "
                                           r"initializer"):
        load_onnx(_conv_model(inits={}))


def test_unsupported_op():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Cos", ["c"], ["y"], name="weird")]
    with pytest.raises(CompileError, match=r"node 'weird' \(Cos\): unsupported operator 'Cos'"):
        load_onnx(_conv_model(nodes=nodes))


class _Mul(torch.nn.Module):
    def forward(self, x):
        return x * x


def test_unsupported_op_from_torch():
    with pytest.raises(CompileError, match=r"\(Mul\): unsupported operator 'Mul'"):
        from_torch(_Mul(), (1, 2, 3, 3))


def test_inconsistent_shapes():
    # an Add of the conv's 4 channels and the 3-channel input
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "x"], ["y"], name="residual")]
    with pytest.raises(CompileError, match=r"node 'residual' \(Add\): adds tensors of "
                                           r"different shapes \[1, 4, 8, 8\] and \[1, 3, 8, 8\]"):
        load_onnx(_conv_model(nodes=nodes))
    # a weight whose input channels do not match
    bad = {"w": np.zeros((4, 5, 3, 3), np.float32)}
    with pytest.raises(CompileError, match=r"node 'conv1' \(Conv\): weight \[4, 5, 3, 3\]"):
        load_onnx(_conv_model(inits=bad))
    # a declared output shape that disagrees with the computation
    wrong = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 7, 7])]
    with pytest.raises(CompileError, match=r"node 'relu1' \(Relu\): output 'y' is declared"):
        load_onnx(_conv_model(outputs=wrong))


def test_calibration_of_wrong_shape():
    graph = load_onnx(_conv_model())
    for bad in (np.zeros((2, 3, 8, 9), np.float32), np.zeros((3, 8, 8), np.float32),
                np.zeros((0, 3, 8, 8), np.float32)):
        with pytest.raises(CompileError, match=r"calibration array must be float "
                                               r"\[N, 3, 8, 8\]"):
            quantize(graph, bad)
    with pytest.raises(CompileError, match="NaN"):
        quantize(graph, np.full((1, 3, 8, 8), np.nan, np.float32))


def test_missing_external_data(tmp_path):
    graph = onnx.load_model_from_string(_conv_model())
    path = tmp_path / "ext.onnx"
    onnx.save_model(graph, str(path), save_as_external_data=True, location="ext.onnx.data",
                    size_threshold=0)
    assert load_onnx(path).nodes
    os.remove(tmp_path / "ext.onnx.data")
    with pytest.raises(CompileError, match="external weight data"):
        load_onnx(path)
    with pytest.raises(CompileError, match="external data"):
        load_onnx(Path(path).read_bytes())


def test_avg_pool_without_padding_count():
    model = torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)
    with pytest.raises(CompileError, match=r"\(AveragePool\): count_include_pad=0"):
        quantize(from_torch(model, (1, 2, 7, 7)))


def test_two_inputs_refused():
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 8, 8]) for n in "xz"]
    with pytest.raises(CompileError, match="exactly one"):
        load_onnx(_conv_model(inputs=inputs))
