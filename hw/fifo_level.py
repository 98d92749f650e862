"""The level an `amaranth.lib.fifo.SyncFIFO` will have after the current cycle.

A flag formed from it and registered (`level_next != 0`, `level_next != depth`) equals the
FIFO's own `r_rdy` / `w_rdy` in every cycle, but comes from a flip-flop instead of a compare
of the level register: for FIFOs whose flags start long handshake chains (PassFlow's output,
the read DMA's in-flight bursts).
"""

from amaranth.hdl import Value
from amaranth.lib.fifo import SyncFIFO

__all__ = ["next_level"]


def next_level(fifo: SyncFIFO) -> Value:
    """`fifo`'s level after this cycle's write (`w_en & w_rdy`) and read (`r_en & r_rdy`)."""
    return fifo.r_level + (fifo.w_en & fifo.w_rdy) - (fifo.r_en & fifo.r_rdy)
