"""Analytical cycle model of the accelerator (see sim/perf/engine.py and the unit files)."""

from .model import PerfResult, predict

__all__ = ["PerfResult", "predict"]
