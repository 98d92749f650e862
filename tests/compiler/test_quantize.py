"""Post-training quantization end to end: the golden model's dequantized outputs agree with
onnxruntime's float outputs within the bound stated in netlib (2 (D + 1) output steps for D
requantizing ops on the longest path), for every model and exporter."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import reference
from compiler.calibrate import INT8_MAX
from compiler.errors import CompileError
from compiler.frontend import from_torch, load_onnx
from compiler.graph import Activation as FloatActivation
from compiler.graph import OpKind
from compiler.qgraph import QConcat, QConv, QHost, QPool
from compiler.quantize import build_lut, default_calibration, quantize
from hw.isa import Activation, PoolKind

from . import netlib
from .conftest import EXPORTS
from .onnx_builders import make_model, old_style


def _images(shape, n=6, seed=1):
    return np.random.default_rng(seed).standard_normal((n,) + tuple(shape[1:])).astype(
        np.float32)


@pytest.mark.parametrize("name,exporter", EXPORTS, ids=[f"{n}-{e}" for n, e in EXPORTS])
def test_reference_matches_onnxruntime(exports, name, exporter):
    path = exports[name, exporter]
    x = _images(netlib.MODELS[name][1])
    q = quantize(load_onnx(path), x, host_fallback=True)
    netlib.check_close(q, x, netlib.ort_outputs(path, x))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_old_opset_model_quantizes(auto_pad):
    data = old_style(auto_pad).SerializeToString()
    x = _images((1, 3, 9, 9))
    q = quantize(load_onnx(data), x)
    assert [type(op) for op in q.ops] == [QConv, QPool, QConv]
    assert q.ops[0].activation is Activation.RELU and q.ops[2].activation is Activation.LUT
    netlib.check_close(q, x, netlib.ort_outputs(data, x))


def test_qgraph_structure(exports):
    """Inception: concat inputs share the output's scale, pools keep their input's scale,
    the fully connected layer after the 13x4x4 map is a 4x4 convolution."""
    q = quantize(load_onnx(exports["inception", "legacy"]), _images((1, 4, 8, 8)))
    (cat,) = [op for op in q.ops if isinstance(op, QConcat)]
    assert len({q.tensors[t].scale for t in cat.inputs + (cat.output,)}) == 1
    for op in q.ops:
        if isinstance(op, QPool) and op.kind is not PoolKind.GLOBAL_AVG:
            assert q.tensors[op.input].scale == q.tensors[op.output].scale
    fc1 = [op for op in q.ops if isinstance(op, QConv)][-2]
    assert fc1.weight.shape == (19, 13, 4, 4) and fc1.activation is Activation.LUT
    for op in q.ops:
        if isinstance(op, QConv):
            assert op.weight.dtype == np.int8 and op.bias.dtype == np.int32
            assert np.all((op.mult >= 1 << 14) & (op.shift <= 63))
            assert np.abs(op.weight).max() == INT8_MAX  # per-channel max-abs scales
        assert q.tensors[op.output].shape[0] >= 1


def test_lut_formula():
    graph = from_torch(netlib.build("conv3s2")[0], (1, 3, 15, 13))
    node = graph.nodes[-1]
    assert node.kind is OpKind.SIGMOID
    node.activation = FloatActivation(node.kind)
    lut = build_lut(node, 0.05, 1 / 127)
    i = np.arange(256)
    want = np.clip(np.rint(1 / (1 + np.exp(-(i - 128) * 0.05)) * 127), -128, 127)
    np.testing.assert_array_equal(lut, want)


def test_default_calibration_is_seeded(exports):
    graph = load_onnx(exports["residual", "legacy"])
    a, b = quantize(graph), quantize(graph)
    assert [t.scale for t in a.tensors.values()] == [t.scale for t in b.tensors.values()]
    x = default_calibration(graph)
    assert x.shape == (8, 3, 15, 15) and x.dtype == np.float32


def test_ceil_mode_max_pool():
    import torch
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(3, 2,
                                                                             ceil_mode=True))
    torch.manual_seed(0)
    model.eval()
    graph = from_torch(model, (1, 3, 10, 10))
    x = _images((1, 3, 10, 10))
    q = quantize(graph, x)
    pool = q.ops[1]
    assert pool.pads == (0, 0, 1, 1) and q.tensors[pool.output].shape == (4, 4, 4)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    netlib.check_close(q, x, [want])


def test_host_fallback(exports):
    graph = load_onnx(exports["classifier_softmax", "legacy"])
    with pytest.raises(CompileError, match=r"node '/Softmax' \(Softmax\).*--host-fallback"):
        quantize(graph)
    q = quantize(graph, host_fallback=True)
    assert isinstance(q.ops[-1], QHost) and q.ops[-1].op_type == "Softmax"


def test_lrn_on_host():
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((6, 3, 3, 3)) * 0.3).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("LRN", ["r"], ["y"], name="lrn", size=3, alpha=1e-2, beta=0.75)]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 3, 6, 6])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 6, 6])],
                       {"w": w})
    data = model.SerializeToString()
    x = _images((1, 3, 6, 6))
    with pytest.raises(CompileError, match=r"node 'lrn' \(LRN\)"):
        quantize(load_onnx(data), x)
    q = quantize(load_onnx(data), x, host_fallback=True)
    assert isinstance(q.ops[-1], QHost) and q.ops[-1].attrs["size"] == 3
    netlib.check_close(q, x, netlib.ort_outputs(data, x))


def _qdq_export(path: str, out: str, x: np.ndarray, activation_type) -> onnx.ModelProto:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    name = onnx.load(path).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.images = iter([{name: x[i:i + 1]} for i in range(len(x))])

        def get_next(self):
            return next(self.images, None)

    symmetric = activation_type is QuantType.QInt8
    quantize_static(path, out, Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=activation_type, weight_type=QuantType.QInt8,
                    per_channel=True,
                    extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True})
    return onnx.load(out)


def test_prequantized_qdq_model(exports, tmp_path):
    """onnxruntime's quantize_static (QDQ, symmetric int8, per-channel weights): the carried
    activation scales become the tensor scales exactly, and because per-channel symmetric
    weights have max |q| = 127 in every channel, requantizing the dequantized weights per
    channel gives back the same int8 weights and int32 biases bit for bit."""
    from onnxruntime.quantization import QuantType

    path = exports["residual", "legacy"]
    x = _images((1, 3, 15, 15), n=8)
    qdq = str(tmp_path / "qdq.onnx")
    model = _qdq_export(path, qdq, x, QuantType.QInt8)
    name = model.graph.input[0].name
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    graph = load_onnx(qdq)
    assert graph.tensors[name].scale == float(inits[name + "_scale"])
    q = quantize(graph, None)   # carried scales: the (default) calibration does not change them
    assert q.tensors[name].scale == graph.tensors[name].scale
    convs = {op.name: op for op in q.ops if isinstance(op, QConv)}
    for layer, op_name in (("stem", "/stem/Conv"), ("a", "/a/Conv"), ("b", "/b/Conv"),
                           ("fc", "/fc/Gemm")):
        op = convs[op_name]
        np.testing.assert_array_equal(op.weight, inits[f"{layer}.weight_quantized"].reshape(
            op.weight.shape))
        np.testing.assert_array_equal(op.bias, inits[f"{layer}.bias_quantized"])
    netlib.check_close(q, x, netlib.ort_outputs(path, x))


def test_prequantized_asymmetric_activations(exports, tmp_path):
    """uint8 activations with a zero point: the symmetric scale covering the same real range,
    s * max(zp, 255 - zp) / 127; onnxruntime drops the ReLUs (their [0, hi] quantization
    clamps negatives), and the importer puts them back."""
    from onnxruntime.quantization import QuantType

    path = exports["residual", "legacy"]
    x = _images((1, 3, 15, 15), n=8)
    model = _qdq_export(path, str(tmp_path / "qdq.onnx"), x, QuantType.QUInt8)
    name = model.graph.input[0].name
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    s, zp = float(inits[name + "_scale"]), int(inits[name + "_zero_point"])
    graph = load_onnx(str(tmp_path / "qdq.onnx"))
    assert graph.tensors[name].scale == pytest.approx(s * max(zp, 255 - zp) / 127, rel=1e-12)
    assert [n.kind for n in model.graph.node if n.op_type == "Relu"] == []
    assert sum(n.kind is OpKind.RELU for n in graph.nodes) == 3
    netlib.check_close(quantize(graph, x), x, netlib.ort_outputs(path, x))


def test_reference_runs_on_quantized_input(exports):
    q = quantize(load_onnx(exports["conv1x1", "legacy"]))
    x = np.zeros(q.tensors[q.inputs[0]].shape, np.int8)
    out = reference.run(q, {q.inputs[0]: x})[q.outputs[0]]
    assert out.dtype == np.int8 and out.shape == q.tensors[q.outputs[0]].shape
