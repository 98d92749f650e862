"""The one error type the compiler raises for anything wrong with what the user gave it.

A `CompileError` is printed by the CLI as one line without a traceback, so its message must
stand alone: it names the node (its name and ONNX op type) when there is one, says what is
wrong and, where it helps, what is accepted instead.
"""

from __future__ import annotations

__all__ = ["CompileError"]


class CompileError(ValueError):
    """A model, calibration set or option the compiler cannot accept.

    `node` and `op_type` name the graph node at fault (None when the problem is not a node's,
    e.g. a truncated file); `reason` is the explanation without the node prefix."""

    def __init__(self, reason: str, *, node: str | None = None, op_type: str | None = None
                 ) -> None:
        self.node = node
        self.op_type = op_type
        self.reason = reason
        if node is not None:
            where = f"node {node!r} ({op_type})" if op_type else f"node {node!r}"
            super().__init__(f"{where}: {reason}")
        else:
            super().__init__(reason)
