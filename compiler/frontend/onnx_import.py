"""Read an ONNX model as the exporters write it into the float IR.

Accepted: PyTorch's legacy (TorchScript) and new (torch.export) exporters, weights inline or in
a side `.onnx.data` file (external data, next to the model), older opsets (weights as
initializers that are also listed as graph inputs, `auto_pad`, Constant nodes, the bias as a
separate Add, Flatten or Reshape, Gemm or MatMul+Add). A batch dimension that is 1 or dynamic
is fixed at 1. Subgraphs that only compute constants (Shape -> Gather -> Concat -> Reshape,
Transpose or DequantizeLinear of a weight, ...) are evaluated here with onnx's reference
evaluator, so only operations on activations reach the IR.

Pre-quantized models: a QuantizeLinear -> DequantizeLinear pair on an activation is removed and
its scale is kept as that tensor's `scale`. An asymmetric pair (a zero point other than 0, or
uint8) becomes the symmetric int8 scale that covers the same real range, s * max(zp - qmin,
qmax - zp) / 127; when that range starts at 0 (zp = qmin) the pair also clamps negative values,
which quantizers rely on when they drop a ReLU, so it becomes a ReLU node. The clamp at the
bottom of a range below 0 is not reproduced (values below it pass through). DequantizeLinear of
a constant is evaluated, so quantized weights arrive as their float values.

Shapes: ONNX's own shape inference runs on the batch-1 model, and the importer computes every
shape itself from the IR rules (compiler/shapes.py); a tensor whose declared or inferred ONNX
shape differs from the computed one stops the import with the producing node named.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from ..errors import CompileError
from ..graph import Graph, Node, OpKind, Tensor
from ..shapes import node_shape
from .onnx_ops import OnnxNode, translate

__all__ = ["load_onnx", "read_model", "import_model"]


def read_model(source: str | os.PathLike | bytes) -> onnx.ModelProto:
    """The ModelProto of a file path or serialized bytes, with external weights loaded."""
    if isinstance(source, (bytes, bytearray)):
        what, data, base = "the model bytes", bytes(source), None
    else:
        path = Path(source)
        what, base = f"{str(path)!r}", path.parent
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CompileError(f"cannot read {what}: {exc.strerror or exc}") from None
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise CompileError(f"{what}: not a valid ONNX model (truncated or not ONNX: "
                           f"{type(exc).__name__})") from None
    if model.ir_version <= 0 or not model.graph.node or not model.graph.output:
        raise CompileError(f"{what}: not an ONNX model (no IR version, nodes or outputs)")
    external = [t.name for t in model.graph.initializer
                if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        if base is None:
            raise CompileError(f"{what}: the weights ({external[0]!r}, ...) are in an external "
                               "data file; pass the model's path so the file beside it can be "
                               "read")
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(base))
        except (OSError, ValueError, onnx.checker.ValidationError) as exc:
            raise CompileError(f"{what}: cannot read the external weight data of "
                               f"{external[0]!r} ({exc}); keep the .data file next to the "
                               "model") from None
    return model


def _value_shape(vi: onnx.ValueInfoProto) -> tuple[int | None, ...] | None:
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in vi.type.tensor_type.shape.dim)


def _network_input(model: onnx.ModelProto) -> tuple[str, tuple[int, ...]]:
    g = model.graph
    inits = {t.name for t in g.initializer}
    real = [vi for vi in g.input if vi.name not in inits]
    if len(real) != 1:
        raise CompileError(f"the model must have exactly one (image) input, it has {len(real)}: "
                           f"{[vi.name for vi in real]}")
    vi = real[0]
    if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise CompileError(f"input {vi.name!r} must be float32, not "
                           f"{onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type)}")
    shape = _value_shape(vi)
    if shape is None or len(shape) != 4:
        raise CompileError(f"input {vi.name!r} must be 4-D NCHW, not "
                           f"{list(shape) if shape is not None else 'of unknown rank'}")
    dims = vi.type.tensor_type.shape.dim
    if dims[0].HasField("dim_value") and dims[0].dim_value not in (0, 1):
        raise CompileError(f"input {vi.name!r} has a fixed batch of {dims[0].dim_value}; "
                           "programs are compiled for batch 1: export with batch 1 or a "
                           "dynamic batch axis")
    if None in shape[1:]:
        raise CompileError(f"input {vi.name!r} needs static C, H and W, not {list(shape)}")
    dims[0].Clear()
    dims[0].dim_value = 1
    return vi.name, (1,) + tuple(shape[1:])


def _onnx_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | None, ...]]:
    """Shapes ONNX declares or infers for the batch-1 model (best effort)."""
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError):
        inferred = model
    g = inferred.graph
    out = {}
    for vi in list(g.value_info) + list(g.output):
        shape = _value_shape(vi)
        if shape is not None:
            out[vi.name] = shape
    return out


def _symmetric_scale(node: OnnxNode, scale: np.ndarray, zero: np.ndarray | None,
                     dtype: np.dtype) -> tuple[float, bool]:
    """(symmetric int8 scale covering the real range of the quantization, whether that range
    starts at 0: the quantization then clamps negative values away, as a ReLU does)."""
    if scale.size != 1:
        raise node.fail("per-channel quantization of an activation is not supported")
    s, z = float(scale.reshape(-1)[0]), 0 if zero is None else int(zero.reshape(-1)[0])
    if z == 0 and dtype == np.int8:
        return s, False
    info = np.iinfo(dtype)
    return s * max(abs(info.min - z), abs(info.max - z)) / 127.0, z == info.min


_SIGN_PRESERVING = (OpKind.MAXPOOL, OpKind.AVGPOOL, OpKind.GLOBAL_AVGPOOL, OpKind.FLATTEN,
                    OpKind.RESHAPE, OpKind.CONCAT, OpKind.DROPOUT, OpKind.IDENTITY, OpKind.PAD)


def _keeps_sign(node: Node, nonnegative: set[str]) -> bool:
    """Whether the node's output is >= 0 for sure (ReLU, Sigmoid, or a data movement of
    non-negative inputs)."""
    if node.kind in (OpKind.RELU, OpKind.SIGMOID):
        return True
    if node.kind is OpKind.CLIP:
        return node.attrs.get("min", -1.0) >= 0
    return node.kind in _SIGN_PRESERVING and all(t in nonnegative for t in node.inputs)


class _Importer:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        self.input, in_shape = _network_input(model)
        self.consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.tensors = {self.input: Tensor(self.input, in_shape)}
        self.alias: dict[str, str] = {}
        # QuantizeLinear output -> (x, symmetric scale, clamps negatives)
        self.quantized: dict[str, tuple[str, float, bool]] = {}
        self.nodes: list[Node] = []
        self.nonnegative: set[str] = set()   # tensors known >= 0 (no ReLU needed for QDQ)

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def view(self, index: int, proto: onnx.NodeProto) -> OnnxNode:
        name = proto.name or f"{proto.op_type}_{index}"
        node = OnnxNode(name, proto.op_type, self.opset,
                        {a.name: onnx.helper.get_attribute_value(a) for a in proto.attribute},
                        [], [], list(proto.output), [])
        for raw in proto.input:
            t = self.resolve(raw) if raw else ""
            if t and t not in self.consts and t not in self.tensors and t not in self.quantized:
                raise node.fail(f"input {raw!r} is neither the graph input, an initializer nor "
                                "an earlier node's output (missing initializer?)")
            if t in self.quantized and proto.op_type != "DequantizeLinear":
                raise node.fail(f"reads the integer tensor {raw!r}; only QuantizeLinear -> "
                                "DequantizeLinear pairs are supported, not integer operators")
            node.inputs.append(t)
            node.consts.append(self.consts.get(t) if t else None)
            node.shapes.append(self.tensors[t].shape if t in self.tensors else None)
        return node

    def fold(self, node: OnnxNode, proto: onnx.NodeProto) -> None:
        """Evaluate a node whose inputs are all constant, at the model's opset."""
        feeds = {p: c for p, c in zip(proto.input, node.consts) if p}
        inputs = [onnx.helper.make_tensor_value_info(
            k, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in feeds.items()]
        outputs = [onnx.helper.make_empty_tensor_value_info(o) for o in proto.output if o]
        model = onnx.helper.make_model(
            onnx.helper.make_graph([proto], "fold", inputs, outputs),
            opset_imports=[onnx.helper.make_opsetid("", self.opset)])
        try:
            results = ReferenceEvaluator(model).run(None, feeds)
        except Exception as exc:  # the evaluator raises many types for a node it cannot run
            raise node.fail(f"cannot evaluate this constant subgraph: {exc}") from None
        for out, value in zip([o for o in proto.output if o], results):
            self.consts[out] = np.asarray(value)

    def add(self, index: int, proto: onnx.NodeProto) -> None:
        node = self.view(index, proto)
        op = proto.op_type
        if op == "Shape" and node.inputs and node.inputs[0] in self.tensors:
            dims = np.array(self.tensors[node.inputs[0]].shape, np.int64)
            start, end = node.attrs.get("start", 0), node.attrs.get("end")
            self.consts[proto.output[0]] = dims[start:end]
        elif all(c is not None for c in node.consts) and (node.inputs or op == "Constant"):
            self.fold(node, proto)
        elif op == "QuantizeLinear":
            x = node.activation(0)
            zero = node.consts[2] if len(node.inputs) > 2 and node.inputs[2] else None
            dtype = np.dtype(np.uint8) if zero is None else zero.dtype
            self.quantized[proto.output[0]] = (x,) + _symmetric_scale(
                node, node.const(1, "scale"), zero, dtype)
        elif op == "DequantizeLinear":
            if node.inputs[0] not in self.quantized:
                raise node.fail("dequantizes a tensor that no QuantizeLinear produced "
                                "(integer network inputs are not supported)")
            x, scale, nonnegative = self.quantized[node.inputs[0]]
            if nonnegative and x not in self.nonnegative:
                # A range [0, hi] clamps negatives: quantizers drop the ReLU it replaces.
                relu = Node(node.name, OpKind.RELU, [x], [proto.output[0]],
                            {"op_type": "DequantizeLinear"})
                self.tensors[proto.output[0]] = Tensor(proto.output[0], self.tensors[x].shape,
                                                       scale)
                self.nodes.append(relu)
                self.nonnegative.add(proto.output[0])
            else:
                self.tensors[x].scale = scale
                self.alias[proto.output[0]] = x
        else:
            try:
                ir = translate(node)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                # a required attribute or input is missing or has the wrong type
                raise node.fail(f"malformed node ({type(exc).__name__}: {exc})") from None
            shape = node_shape(ir, [self.tensors[t].shape for t in ir.inputs])
            self.tensors[ir.outputs[0]] = Tensor(ir.outputs[0], shape)
            self.nodes.append(ir)
            if _keeps_sign(ir, self.nonnegative):
                self.nonnegative.add(ir.outputs[0])

    def graph(self) -> Graph:
        for index, proto in enumerate(self.model.graph.node):
            self.add(index, proto)
        outputs = []
        for vi in self.model.graph.output:
            name = self.resolve(vi.name)
            if name not in self.tensors or name == self.input:
                raise CompileError(f"output {vi.name!r} is not computed from the input "
                                   "(a constant or the input itself)")
            outputs.append(name)
        g = Graph(self.nodes, self.tensors, [self.input], outputs,
                  self.model.graph.name or "network")
        g.prune_tensors()
        return g


def _check_shapes(graph: Graph, onnx_shapes: dict[str, tuple[int | None, ...]]) -> None:
    for node in graph.nodes:
        out = node.outputs[0]
        want = onnx_shapes.get(out)
        have = graph.tensors[out].shape
        if want is None:
            continue
        if len(want) != len(have) or any(w is not None and w != h
                                          for w, h in zip(want[1:], have[1:])):
            raise CompileError(f"output {out!r} is declared or inferred as {list(want)} but the "
                               f"operation computes {list(have)} (inconsistent shapes)",
                               node=node.name, op_type=node.op_type)


def import_model(model: onnx.ModelProto) -> Graph:
    """The IR graph of a loaded ModelProto (modified: the batch is fixed at 1)."""
    importer = _Importer(model)
    onnx_shapes = _onnx_shapes(model)
    graph = importer.graph()
    _check_shapes(graph, {importer.resolve(k): v for k, v in onnx_shapes.items()
                          if k not in importer.alias})
    return graph


def load_onnx(source: str | os.PathLike | bytes) -> Graph:
    """Import an ONNX model (a path, or the serialized bytes of a model without external
    data) into the float IR, compiled for batch 1."""
    return import_model(read_model(source))
