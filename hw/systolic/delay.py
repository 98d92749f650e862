"""Delay lines that advance with the pipeline's clock enable."""

from __future__ import annotations

from amaranth import Module, Signal, Value

__all__ = ["delayed"]


def delayed(m: Module, en: Value, value: Value, stages: int, *, name: str,
            reset_less: bool = True) -> Value:
    """`value` delayed by `stages` registers that load only while `en` is high.

    `stages` 0 returns `value` itself. Data lines are reset-less (no reset fan-out); pass
    `reset_less=False` for valid flags, which must be 0 after reset.
    """
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 0:
        raise ValueError(f"stages must be a non-negative integer, not {stages!r}")
    for stage in range(stages):
        register = Signal.like(value, name=f"{name}_{stage}", reset_less=reset_less)
        with m.If(en):
            m.d.sync += register.eq(value)
        value = register
    return value
