"""Weight-stationary systolic array: processing element, array, column adder and the core."""

from .core import BankState, SystolicCore, chunk_layout, sums_layout, weight_word_layout

__all__ = ["SystolicCore", "BankState", "chunk_layout", "weight_word_layout", "sums_layout"]
