"""Delay lines that advance with the pipeline's clock enable.

The registers of a line are named from its output back (`name_0` is the last register) with
zero-padded indices, and their updates are added output first. Yosys writes instances in name
order and a module's processes in the order they were added, and Verilator keeps that order
when it schedules the updates: a line whose downstream register comes first
shifts in place, where upstream-first order made Verilator give every register a shadow copy
(three extra copies per register per cycle; docs/performance.md).
"""

from __future__ import annotations

from amaranth import Module, Signal, Value

__all__ = ["delayed", "delay_line", "downstream_first"]


def downstream_first(index: int, count: int) -> str:
    """Zero-padded name suffix for element `index` of a chain of `count` (0 = upstream end)
    that sorts the downstream end first: `count - 1 - index`, padded to the width of
    `count - 1`."""
    if not 0 <= index < count:
        raise ValueError(f"index must be in 0..{count - 1}, not {index!r}")
    return f"{count - 1 - index:0{len(str(count - 1))}d}"


def delay_line(m: Module, en: Value, value: Value, stages: int, *, name: str,
               reset_less: bool = True) -> list[Value]:
    """`value` and its copies delayed by 1 .. `stages` registers that load only while `en`
    is high (`stages + 1` taps; tap k is k advances late).

    Data lines are reset-less (no reset fan-out); pass `reset_less=False` for valid flags,
    which must be 0 after reset.
    """
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 0:
        raise ValueError(f"stages must be a non-negative integer, not {stages!r}")
    taps = [value] + [Signal.like(value, name=f"{name}_{downstream_first(stage, stages)}",
                                  reset_less=reset_less) for stage in range(stages)]
    # Statements in downstream-first order too: Yosys writes a module's processes in the
    # order they were added.
    with m.If(en):
        m.d.sync += [taps[k + 1].eq(taps[k]) for k in reversed(range(stages))]
    return taps


def delayed(m: Module, en: Value, value: Value, stages: int, *, name: str,
            reset_less: bool = True) -> Value:
    """`value` delayed by `stages` registers that load only while `en` is high (`stages` 0
    returns `value` itself); see `delay_line`."""
    return delay_line(m, en, value, stages, name=name, reset_less=reset_less)[-1]
