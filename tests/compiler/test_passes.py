"""Graph passes: each rewrite keeps the float function and produces the accelerator's forms."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from compiler.errors import CompileError
from compiler.frontend import from_torch, load_onnx
from compiler.graph import OpKind, run_float
from compiler.passes import PIPELINE, fold_batchnorm, normalize_conv, run_pipeline

from . import netlib
from .onnx_builders import make_model, old_style

_FINAL_KINDS = {OpKind.CONV, OpKind.MAXPOOL, OpKind.AVGPOOL, OpKind.GLOBAL_AVGPOOL, OpKind.ADD,
                OpKind.CONCAT, OpKind.SOFTMAX, OpKind.LRN}


def _same_function(before, after, x):
    want, got = run_float(before, x), run_float(after, x)
    assert list(want) == list(got)
    for k in want:
        np.testing.assert_allclose(got[k].reshape(len(x), -1), want[k].reshape(len(x), -1),
                                   rtol=1e-5, atol=1e-6)


def _images(shape, n=2):
    return np.random.default_rng(2).standard_normal((n,) + tuple(shape[1:])).astype(np.float32)


@pytest.mark.parametrize("exporter", ["legacy", "opset9"])
@pytest.mark.parametrize("name", list(netlib.MODELS))
def test_pipeline_keeps_function_and_normalizes(exports, name, exporter):
    graph = load_onnx(exports[name, exporter])
    after = run_pipeline(copy.deepcopy(graph))
    _same_function(graph, after, _images(netlib.MODELS[name][1]))
    for node in after.nodes:
        assert node.kind in _FINAL_KINDS, node
        if node.kind is OpKind.CONV:
            kh, kw = node.weights["weight"].shape[2:]
            assert kh == kw and node.attrs["group"] == 1 and node.attrs["dilations"] == (1, 1)
            assert node.attrs["strides"][0] == node.attrs["strides"][1]
    assert all(len(t.shape) == 4 for t in after.tensors.values())


def test_fold_batchnorm_and_fuse():
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.uniform(0.5, 1.5, s).astype(np.float32)  # noqa: E731
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
             helper.make_node("BatchNormalization", ["c", "g", "beta", "m", "v"], ["n"],
                              name="bn"),
             helper.make_node("Relu", ["n"], ["y"], name="relu")]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 2, 5, 5])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 3, 3])],
                       {"w": f32(3, 2, 3, 3) - 1, "b": f32(3), "g": f32(3), "beta": f32(3) - 1,
                        "m": f32(3) - 1, "v": f32(3)})
    graph = load_onnx(model.SerializeToString())
    after = run_pipeline(copy.deepcopy(graph))
    assert [(n.kind, n.activation.kind) for n in after.nodes] == [(OpKind.CONV, OpKind.RELU)]
    _same_function(graph, after, _images((1, 2, 5, 5)))
    # on its own, fold_batchnorm only folds:
    assert [n.kind for n in fold_batchnorm(copy.deepcopy(graph)).nodes] == [OpKind.CONV,
                                                                             OpKind.RELU]


def test_old_style_rewrites():
    """Identity/Dropout dropped, bias Add folded, flatten resolved, MatMul+Add -> conv."""
    graph = load_onnx(old_style("VALID").SerializeToString())
    bias = graph.nodes[1].weights["constant"].reshape(-1)
    after = run_pipeline(copy.deepcopy(graph))
    assert [n.kind for n in after.nodes] == [OpKind.CONV, OpKind.MAXPOOL, OpKind.CONV]
    np.testing.assert_array_equal(after.nodes[0].weights["bias"], bias)
    assert after.nodes[2].weights["weight"].shape == (4, 6, 2, 2)
    assert after.nodes[2].activation.kind is OpKind.SIGMOID


def test_fc_weight_permutation(exports):
    """Linear over a flattened 13x4x4 map -> 4x4 conv with weight[k, c, y, x] =
    W[k, c*16 + y*4 + x]."""
    model, _ = netlib.build("inception")
    after = run_pipeline(load_onnx(exports["inception", "legacy"]))
    fc1 = [n for n in after.nodes if n.attrs.get("op_type") == "Gemm"][0]
    want = model.fc1.weight.detach().numpy().reshape(19, 13, 4, 4)
    np.testing.assert_allclose(fc1.weights["weight"], want, rtol=1e-6)


def test_standalone_batchnorm_and_activation_become_1x1(exports):
    after = run_pipeline(load_onnx(exports["bn_relu_max", "legacy"]))
    last = after.nodes[-1]
    assert last.kind is OpKind.CONV and last.attrs["op_type"] == "BatchNormalization"
    w = last.weights["weight"][:, :, 0, 0]
    np.testing.assert_array_equal(w, np.diag(np.diag(w)))
    after = run_pipeline(load_onnx(exports["inception", "legacy"]))
    relu = [n for n in after.nodes if n.attrs.get("op_type") == "Relu"]
    assert len(relu) == 1 and relu[0].activation.kind is OpKind.RELU
    assert after.producer(relu[0].inputs[0]).kind is OpKind.CONCAT


def test_pad_folds_into_average_pool(exports):
    graph = load_onnx(exports["bn_sigmoid_avg", "opset9"])
    assert any(n.kind is OpKind.PAD for n in graph.nodes)
    after = run_pipeline(copy.deepcopy(graph))
    (pool,) = [n for n in after.nodes if n.kind is OpKind.AVGPOOL]
    assert pool.attrs["pads"] == (1, 1, 1, 1) and pool.attrs["count_include_pad"] == 1


class _Rect(torch.nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, (1, 3), stride=stride, padding=(0, 1))

    def forward(self, x):
        return self.conv(x)


def test_rectangular_kernel_and_unequal_stride():
    torch.manual_seed(0)
    graph = from_torch(_Rect(1), (1, 3, 6, 7))
    after = normalize_conv(copy.deepcopy(graph))
    node = after.nodes[0]
    assert node.weights["weight"].shape == (4, 3, 3, 3) and node.attrs["pads"] == (0, 1, 2, 1)
    _same_function(graph, after, _images((1, 3, 6, 7)))
    with pytest.raises(CompileError, match=r"node '/conv/Conv' \(Conv\): strides 1x2 differ"):
        run_pipeline(from_torch(_Rect((1, 2)), (1, 3, 6, 7)))


class _FlattenAdd(torch.nn.Module):
    def forward(self, x):
        f = torch.flatten(x, 1)
        return f + f


def test_flatten_into_non_fc_is_refused():
    with pytest.raises(CompileError, match=r"\(Flatten\): its \[1, 48\] output feeds"):
        run_pipeline(from_torch(_FlattenAdd(), (1, 3, 4, 4)))


def test_pipeline_is_idempotent(exports):
    """quantize() runs the pipeline on whatever graph it gets, processed or not."""
    once = run_pipeline(load_onnx(exports["inception", "legacy"]))
    twice = run_pipeline(copy.deepcopy(once))
    assert [(n.name, n.kind, n.inputs, n.outputs) for n in once.nodes] == \
        [(n.name, n.kind, n.inputs, n.outputs) for n in twice.nodes]
    assert len(PIPELINE) == len({p.__name__ for p in PIPELINE})
