"""The registry of benchmark functions.

A benchmark is a function of no arguments returning a `Section`: a list of rows (dicts with the
same keys, in column order) plus notes that explain them. A row with a `config` column names the
accelerator configuration it measured (a preset name); bench/results.py records those configs'
fields and fingerprints beside the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Section", "Benchmark", "BENCHMARKS", "benchmark"]


@dataclass
class Section:
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    function: Callable[[], Section]


#: Registered benchmarks by name, in registration order.
BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(name: str, title: str) -> Callable[[Callable[[], Section]], Callable[[], Section]]:
    """Register the decorated function as the benchmark `name` (its section title: `title`)."""
    if not name.replace("_", "").isalnum() or not name.islower():
        raise ValueError(f"benchmark name must be lower-case letters, digits and '_', "
                         f"not {name!r}")

    def register(function: Callable[[], Section]) -> Callable[[], Section]:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} is registered twice "
                             f"({BENCHMARKS[name].function.__module__} and "
                             f"{function.__module__})")
        BENCHMARKS[name] = Benchmark(name=name, title=title, function=function)
        return function

    return register
