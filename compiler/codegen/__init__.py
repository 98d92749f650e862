"""Code generation: one lowering per op kind (conv, pool, add; concat is a placement, see
compiler/memory.py), sharing the token scheduler and the codegen context."""

from __future__ import annotations

from ..qgraph import QAdd, QConv, QPool
from . import add, conv, pool
from .base import Lowering

__all__ = ["LOWERINGS", "Lowering"]

#: The lowering of each op type the accelerator runs.
LOWERINGS: dict[type, Lowering] = {QConv: conv.LOWERING, QPool: pool.LOWERING,
                                   QAdd: add.LOWERING}
