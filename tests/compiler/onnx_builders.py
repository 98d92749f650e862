"""Hand-written ONNX models in the style of older exporters and tools, built with onnx.helper:
weights listed as graph inputs, auto_pad, Constant nodes, a Shape -> Gather -> Unsqueeze ->
Concat -> Reshape flatten, bias as a separate Add, MatMul + Add, Identity and Dropout."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["old_style", "make_model"]


def make_model(nodes, inputs, outputs, inits, *, opset: int = 13, ir_version: int = 7,
               value_info=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in inits.items()],
                              value_info=list(value_info))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=ir_version)


def old_style(auto_pad: str, *, seed: int = 0, batch: int | str = "N") -> onnx.ModelProto:
    """Opset 7, IR 3: conv (auto_pad, bias as Add) -> Relu -> Identity -> MaxPool (auto_pad)
    -> Dropout -> flatten through a Shape subgraph -> MatMul + Add -> Sigmoid."""
    rng = np.random.default_rng(seed)
    f32 = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    h = w = 9
    stride = 2
    out = -(-h // stride) if auto_pad.startswith("SAME") else (h - 3) // stride + 1
    pooled = -(-out // 2) if auto_pad.startswith("SAME") else (out - 2) // 2 + 1
    feat = 6 * pooled * pooled
    inits = {"W": f32(6, 3, 3, 3), "B": f32(1, 6, 1, 1), "FW": f32(feat, 4), "FB": f32(4)}
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="conv", kernel_shape=[3, 3],
                         strides=[stride, stride], auto_pad=auto_pad),
        helper.make_node("Add", ["c", "B"], ["cb"], name="bias"),
        helper.make_node("Relu", ["cb"], ["r"], name="relu"),
        helper.make_node("Identity", ["r"], ["i"], name="ident"),
        helper.make_node("MaxPool", ["i"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2], auto_pad=auto_pad),
        helper.make_node("Dropout", ["p"], ["d"], name="drop", ratio=0.5),
        helper.make_node("Shape", ["d"], ["shape"], name="shape"),
        helper.make_node("Constant", [], ["zero"], name="zero",
                         value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["shape", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n"], ["n1"], name="unsq", axes=[0]),
        helper.make_node("Constant", [], ["minus1"], name="minus1",
                         value=numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="cat", axis=0),
        helper.make_node("Reshape", ["d", "target"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "FW"], ["mm"], name="fc"),
        helper.make_node("Add", ["mm", "FB"], ["fcb"], name="fc_bias"),
        helper.make_node("Sigmoid", ["fcb"], ["y"], name="sigmoid"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, h, w])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])
    weight_inputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape)
                     for k, v in inits.items()]
    return make_model(nodes, [x] + weight_inputs, [y], inits, opset=7, ir_version=3)
