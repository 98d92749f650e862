"""PyTorch modules into the float IR through ONNX export, then the ONNX front end.

The module is exported in eval mode with the legacy (TorchScript) exporter by default, which
takes ~0.1 s for a small network against ~2-3 s for the new torch.export-based one
(`dynamo=True`, also supported); the ONNX file lives in a temporary directory so the new
exporter's side `.onnx.data` weights file is read like any other.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from collections.abc import Sequence

from ..errors import CompileError
from ..graph import Graph
from .onnx_import import load_onnx

__all__ = ["export_onnx", "from_torch"]


def export_onnx(module, input_shape: Sequence[int], path: str | os.PathLike, *,
                dynamo: bool = False, opset: int | None = None) -> None:
    """Write `module` (evaluated on a zero tensor of `input_shape`, NCHW) as ONNX to `path`.

    The exporters' own chatter (progress lines, deprecation and future warnings about their
    internals) says nothing about the user's model, so it is silenced."""
    import torch

    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 4 or min(shape) < 1:
        raise CompileError(f"input_shape must be 4 positive dimensions (N, C, H, W), not "
                           f"{list(input_shape)}")
    was_training = module.training
    module.eval()
    kwargs = {"dynamo": dynamo}
    if opset is not None:
        kwargs["opset_version"] = opset
    if dynamo:
        kwargs["verbose"] = False
    try:
        with torch.no_grad(), warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (torch.zeros(shape),), str(path), **kwargs)
    except CompileError:
        raise
    except Exception as exc:  # exporters raise many types for modules they cannot trace
        raise CompileError(f"PyTorch could not export the module to ONNX: "
                           f"{type(exc).__name__}: {exc}") from None
    finally:
        module.train(was_training)


def from_torch(module, input_shape: Sequence[int], *, dynamo: bool = False,
               opset: int | None = None) -> Graph:
    """The float IR of a torch.nn.Module for an NCHW input of `input_shape` (batch 1)."""
    with tempfile.TemporaryDirectory(prefix="systolica-export-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_onnx(module, input_shape, path, dynamo=dynamo, opset=opset)
        return load_onnx(path)
