"""The contract every op kind's lowering implements (one module per op kind).

- `plan(op, graph, config, placements)`: check the op's shapes and limits against the config
  (raising `CompileError` that names the layer) and choose its tiling;
- `cycles(plan)`: the expected compute cycles (one chunk, pooling tap or element-wise word per
  clock, no fill or drain), for the report;
- `macs(plan)`: multiply-accumulates of the layer (0 for ops that do none);
- `emit(op, plan, ctx)`: the instructions, through the context's scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Lowering"]


@dataclass(frozen=True)
class Lowering:
    kind: str
    plan: Callable[..., Any]
    cycles: Callable[[Any], int]
    macs: Callable[[Any], int]
    emit: Callable[..., None]
