"""Front ends: trained networks into the float IR (compiler/graph.py)."""

from .onnx_import import load_onnx
from .torch_import import from_torch

__all__ = ["load_onnx", "from_torch"]
