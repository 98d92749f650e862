"""DRAM placement of a quantized graph's activation tensors, and the constant-data allocator.

Activations live in blocked layout (C/lanes, H, W, lanes; see hw/layout.py). Each tensor gets a
`Placement`: its address, its physical channel groups and its channel map (logical channel ->
physical channel relative to the address).

Concatenation costs no copy: the inputs of a `QConcat` are placed at consecutive channel-group
offsets of the concatenated tensor, so the ops that produce them store straight into it. When a
branch's channel count is a multiple of `lanes` the result's channel map stays the identity;
otherwise the next branch starts at the next whole group and the concatenated tensor carries a
channel map with gaps (a 3 + 3 channel concat on 4 lanes maps to physical channels 0,1,2,4,5,6).
Convolutions read such tensors with zero weights on the gaps, pooling and addition carry the
map through. Limits (each raises `CompileError` naming the node): a tensor may be a branch of
one concat only, at most once, and both inputs of an add must share a channel map.

Tensors whose channels are placed in a concat share the concat's storage ("root"). Roots are
allocated first-fit in the activation arena and freed after their last reader, so dead tensors'
space is reused; graph inputs and outputs are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.layout import physical_groups

from .errors import CompileError
from .qgraph import QAdd, QConcat, QConv, QGraph, QHost, QPool

__all__ = ["Placement", "MemoryPlan", "plan_memory", "ConstantAllocator", "align_up"]

#: DRAM alignment of every allocation: whole 64-byte AXI bursts and any buffer word size.
ALIGN = 64


def align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


@dataclass(frozen=True)
class Placement:
    """Where one activation tensor lives in DRAM."""
    address: int
    groups: int                    #: physical channel blocks of `lanes` channels
    height: int
    width: int
    channels: tuple[int, ...]      #: logical -> physical channel; () is the identity

    def group_address(self, group: int, lanes: int) -> int:
        return self.address + group * self.height * self.width * lanes

    def nbytes(self, lanes: int) -> int:
        return self.groups * self.height * self.width * lanes

    def physical_map(self, count: int) -> tuple[int, ...]:
        return self.channels if self.channels else tuple(range(count))


@dataclass(frozen=True)
class MemoryPlan:
    placements: dict[str, Placement]
    end: int                       #: one past the highest activation byte


def _channel_maps(graph: QGraph, lanes: int) -> tuple[dict[str, tuple[int, ...]],
                                                      dict[str, tuple[str, int]]]:
    """Channel map of every tensor and, for concat branches, (concat tensor, group offset)."""
    maps: dict[str, tuple[int, ...]] = {name: () for name in graph.inputs}
    parent: dict[str, tuple[str, int]] = {}
    for op in graph.ops:
        if isinstance(op, QConv):
            maps[op.output] = ()
        elif isinstance(op, QPool):
            maps[op.output] = maps[op.input]
        elif isinstance(op, QAdd):
            if maps[op.a] != maps[op.b]:
                raise CompileError(
                    f"inputs {op.a!r} and {op.b!r} have different channel layouts (one comes "
                    "from a concatenation with channel gaps); the element-wise unit needs both "
                    "in the same layout", node=op.name, op_type="Add")
            maps[op.output] = maps[op.a]
        elif isinstance(op, QConcat):
            combined: list[int] = []
            offset = 0
            for branch in op.inputs:
                if branch in parent:
                    raise CompileError(
                        f"tensor {branch!r} is already placed in concat "
                        f"{parent[branch][0]!r}; a tensor can be a branch of one "
                        "concatenation only (no-copy placement)", node=op.name,
                        op_type="Concat")
                c = graph.tensors[branch].shape[0]
                bmap = maps[branch] if maps[branch] else tuple(range(c))
                parent[branch] = (op.output, offset)
                combined.extend(offset * lanes + p for p in bmap)
                offset += physical_groups(c, lanes, maps[branch])
            identity = combined == list(range(len(combined)))
            maps[op.output] = () if identity else tuple(combined)
        elif isinstance(op, QHost):
            raise CompileError(
                "runs on the host; the accelerator compiler handles graphs without host ops "
                "(split the network at host ops)", node=op.name, op_type=op.op_type)
        else:
            raise CompileError(f"unknown op {type(op).__name__}",
                               node=str(getattr(op, "name", op)))
    return maps, parent


def plan_memory(graph: QGraph, *, lanes: int, base: int = 0) -> MemoryPlan:
    """Place every tensor of `graph` in DRAM starting at `base` (see the module docstring)."""
    maps, parent = _channel_maps(graph, lanes)

    def root_of(name: str) -> tuple[str, int]:
        offset = 0
        while name in parent:
            name, off = parent[name]
            offset += off
        return name, offset

    # Lifetime of each root, in op indices: created by the first producer of any member,
    # dead after the last reader of any member. Inputs/outputs live for the whole program.
    forever = len(graph.ops) + 1
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for name in graph.inputs:
        root = root_of(name)[0]
        first[root], last[root] = -1, forever
    for index, op in enumerate(graph.ops):
        for name in op.inputs:
            root = root_of(name)[0]
            last[root] = max(last.get(root, index), index)
        root = root_of(op.output)[0]
        first[root] = min(first.get(root, index), index)
        last.setdefault(root, index)
    for name in graph.outputs:
        last[root_of(name)[0]] = forever

    sizes = {root: align_up(physical_groups(graph.tensors[root].shape[0], lanes, maps[root])
                            * graph.tensors[root].shape[1] * graph.tensors[root].shape[2]
                            * lanes, ALIGN) for root in first}
    free: list[tuple[int, int]] = []          # (start, end) holes below `top`
    top = align_up(base, ALIGN)
    addresses: dict[str, int] = {}
    for step in range(-1, len(graph.ops) + 1):
        for root in sorted(r for r in first if first[r] == step):
            size = sizes[root]
            hole = next((h for h in free if h[1] - h[0] >= size), None)
            if hole is None:
                addresses[root] = top
                top += size
            else:
                free.remove(hole)
                addresses[root] = hole[0]
                if hole[1] - hole[0] > size:
                    free.append((hole[0] + size, hole[1]))
        for root in (r for r in first if last[r] == step):
            free.append((addresses[root], addresses[root] + sizes[root]))
            free.sort()
            merged: list[tuple[int, int]] = []
            for start, end in free:
                if merged and merged[-1][1] == start:
                    merged[-1] = (merged[-1][0], end)
                else:
                    merged.append((start, end))
            free = merged

    placements = {}
    for name, tensor in graph.tensors.items():
        if name not in maps:
            continue
        root, offset = root_of(name)
        c, h, w = tensor.shape
        placements[name] = Placement(
            address=addresses[root] + offset * h * w * lanes,
            groups=physical_groups(c, lanes, maps[name]), height=h, width=w,
            channels=maps[name])
    return MemoryPlan(placements=placements, end=top)


class ConstantAllocator:
    """Bump allocator for constant segments (weights, parameters, lookup tables), each aligned
    to `alignment` bytes (a parameter-buffer word can be wider than 64 bytes)."""

    def __init__(self, *, base: int, alignment: int = ALIGN) -> None:
        self.alignment = max(ALIGN, alignment)
        self.top = align_up(base, self.alignment)
        self.segments: list[tuple[str, int, bytes]] = []

    def add(self, name: str, data: bytes) -> int:
        address = self.top
        self.segments.append((name, address, bytes(data)))
        self.top = align_up(address + max(len(data), 1), self.alignment)
        return address
