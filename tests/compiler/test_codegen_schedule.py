"""The token protocol of compiled programs: every push is consumed by exactly one pop (no token
is left at END), no interleaving of the three parallel queues can hold more than token_depth
tokens on a counter or deadlock, and the scheduler's barriers stay out of single layers on
the presets."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.compile import compile_qgraph
from hw.config import preset
from hw.isa import Activation, PoolKind, Queue

from .codegen_util import GraphBuilder

TINY = preset("tiny")

# (pusher, "push_next"/"push_prev") -> (popper, its pop flag)
_COUNTERS = {
    (Queue.LOAD, "push_next"): (Queue.COMPUTE, "pop_prev"),
    (Queue.COMPUTE, "push_prev"): (Queue.LOAD, "pop_next"),
    (Queue.COMPUTE, "push_next"): (Queue.STORE, "pop_prev"),
    (Queue.STORE, "push_prev"): (Queue.COMPUTE, "pop_next"),
}


def _network(rng, config):
    b = GraphBuilder()
    x = b.input("x", (9, 30, 27))
    y = b.conv(rng, x, 17, 3, stride=1, pads=(1, 1, 1, 1), activation=Activation.RELU)
    y = b.pool(y, PoolKind.MAX, 3, 2, (1, 1, 1, 1))
    z = b.conv(rng, y, 17, 1)
    return b.graph([b.add(rng, z, y)])


def _random_interleavings(program, config, runs, rng):
    """Run only the token model with a random runnable queue each step; returns the largest
    number of outstanding tokens seen on any counter."""
    queues = {q: [i for i in program if i.queue is q] for q in Queue}
    worst = 0
    for _ in range(runs):
        pos = {q: 0 for q in Queue}
        tokens = {key: 0 for key in _COUNTERS}
        while any(pos[q] < len(queues[q]) for q in Queue):
            runnable = []
            for q in Queue:
                if pos[q] == len(queues[q]):
                    continue
                instr = queues[q][pos[q]]
                if all(tokens[key] > 0 for key, (popper, flag) in _COUNTERS.items()
                       if popper is q and getattr(instr, flag)):
                    runnable.append(q)
            assert runnable, "deadlock"
            q = runnable[int(rng.integers(len(runnable)))]
            instr = queues[q][pos[q]]
            pos[q] += 1
            for key, (popper, flag) in _COUNTERS.items():
                if popper is q and getattr(instr, flag):
                    tokens[key] -= 1
            for key in _COUNTERS:
                if key[0] is q and getattr(instr, key[1]):
                    tokens[key] += 1
                    worst = max(worst, tokens[key])
        assert all(v == 0 for v in tokens.values()), f"tokens left at END: {tokens}"
    return worst


@pytest.mark.parametrize("depth", [1, 2, 8])
def test_tokens_balanced_and_within_depth_on_any_interleaving(depth):
    config = TINY.replace(name=f"depth{depth}", token_depth=depth)
    rng = np.random.default_rng(depth)
    program = compile_qgraph(_network(rng, config), config).instructions
    for (pusher, push), (popper, pop) in _COUNTERS.items():
        pushes = sum(getattr(i, push) for i in program if i.queue is pusher)
        pops = sum(getattr(i, pop) for i in program if i.queue is popper)
        assert pushes == pops > 0, (pusher, push)
    assert _random_interleavings(program, config, 30, rng) <= depth


@pytest.mark.parametrize("name", ["tiny", "default", "large"])
def test_single_layer_needs_no_barrier(name):
    config = preset(name)
    rng = np.random.default_rng(5)
    b = GraphBuilder()
    x = b.input("x", (20, 33, 35))
    graph = b.graph([b.conv(rng, x, 40, 3, stride=2, pads=(1, 1, 1, 1))])
    program = compile_qgraph(graph, config)
    assert sum(program.meta["barrier_instructions"].values()) == 0
