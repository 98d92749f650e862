"""The four dependency-token counters between neighbouring queues.

Counter k counts tokens pushed by one queue and not yet popped by its neighbour:
LOAD->COMPUTE, COMPUTE->LOAD, COMPUTE->STORE, STORE->COMPUTE. Each holds at most
`config.token_depth`; a push into a full counter (that is not popped in the same cycle) is a
TOKEN_OVERFLOW and leaves the counter unchanged.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig

__all__ = ["TokenLink", "TokenCounters"]


class TokenLink(enum.Enum, shape=2):
    """Index of each counter in the `push`/`pop`/`available`/`overflow` vectors."""
    LOAD_TO_COMPUTE = 0
    COMPUTE_TO_LOAD = 1
    COMPUTE_TO_STORE = 2
    STORE_TO_COMPUTE = 3


class TokenCounters(wiring.Component):
    """Ports (bit k of each vector is counter `TokenLink(k)`):
      push (In 4), pop (In 4): strobes; a counter sees at most one of each per cycle (one
        producing and one consuming queue).
      available (Out 4): the counter is non-zero (a pop may happen).
      overflow (Out 4): strobe, this cycle's push found the counter full.

    Latency: a push in cycle t makes `available` rise in cycle t+1.
    """

    def __init__(self, *, config: AcceleratorConfig) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self._depth = config.token_depth
        super().__init__({
            "push": In(len(TokenLink)), "pop": In(len(TokenLink)),
            "available": Out(len(TokenLink)), "overflow": Out(len(TokenLink)),
        })

    def elaborate(self, platform):
        m = Module()
        for k in range(len(TokenLink)):
            count = Signal(range(self._depth + 1), name=f"count{k}")
            # count != 0 as a flip-flop, set with the count: it gates a queue's `valid`, whose
            # transfer pops the count again (count -> compare -> valid -> transfer -> count
            # was the top of the ULX3S netlist estimate at e679a68).
            nonzero = Signal(name=f"nonzero{k}")
            push, pop = self.push[k], self.pop[k]
            full_push = push & ~pop & (count == self._depth)
            m.d.comb += [self.available[k].eq(nonzero), self.overflow[k].eq(full_push)]
            with m.If(push & ~pop & ~full_push):
                m.d.sync += [count.eq(count + 1), nonzero.eq(1)]
            with m.Elif(pop & ~push):
                m.d.sync += [count.eq(count - 1), nonzero.eq(count != 1)]
        return m
