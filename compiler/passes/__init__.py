"""Graph passes: each a function `Graph -> Graph` in its own file; `PIPELINE` is their order.

The order matters: identities go first so producers see their real readers; explicit
zero pads merge into their reader; biases and batch
norms fold into the convolutions before flattens are resolved and fully connected layers
become convolutions (which are then normalised to square, single-stride, dense kernels);
activations fuse last, and whatever could not be folded or fused runs as a 1x1 convolution.
Shapes are recomputed after every pass (compiler/shapes.py), so a pass that breaks them is
caught at the pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..graph import Graph
from ..shapes import infer_shapes
from .activation_to_conv import activation_to_conv
from .batchnorm_to_conv import batchnorm_to_conv
from .drop_identity import drop_identity
from .fc_to_conv import fc_to_conv
from .fold_batchnorm import fold_batchnorm
from .fold_bias_add import fold_bias_add
from .fold_pad import fold_pad
from .fuse_activation import fuse_activation
from .normalize_conv import normalize_conv
from .resolve_flatten import resolve_flatten

__all__ = ["Pass", "PIPELINE", "run_pipeline", "drop_identity", "fold_pad", "fold_bias_add",
           "fold_batchnorm", "resolve_flatten", "fc_to_conv", "normalize_conv",
           "batchnorm_to_conv", "fuse_activation", "activation_to_conv"]

Pass = Callable[[Graph], Graph]

PIPELINE: list[Pass] = [
    drop_identity,
    fold_pad,
    fold_bias_add,
    fold_batchnorm,
    resolve_flatten,
    fc_to_conv,
    normalize_conv,
    batchnorm_to_conv,
    fuse_activation,
    activation_to_conv,
]


def run_pipeline(graph: Graph, passes: Sequence[Pass] = PIPELINE) -> Graph:
    """Apply `passes` in order (they rewrite the graph in place), checking shapes after each."""
    for rewrite in passes:
        graph = infer_shapes(rewrite(graph))
    return graph
