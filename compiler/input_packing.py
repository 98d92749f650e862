"""Input packing: gather kernel taps of a few-channel first convolution into channels.

The array maps one kernel tap of up to `lanes` input channels per chunk, so an RGB first layer
fills 3 of 16 lanes: AlexNet conv1 (11x11/4) needs 121 chunks per output pixel and block where
363 / 16 = 22.7 would do. The host writes the network input anyway, so it can write it
rearranged (hw/input_packing.py):

    P[(dy * t + dx) * C + c, Y, X] = x[c, a * Y + dy - pad_top, a * X + dx - pad_left]

for a step `a` that divides the stride s and `t` taps per side, with t >= a (every tap is
gathered) or t >= k (the whole kernel is gathered; a kernel smaller than its stride skips
pixels anyway). A conv with kernel k, stride s and pads (top, left, ...) over x is then
exactly a conv over P with stride s / a, kernel k' = ceil((k - t) / a) + 1 (1 when t >= k)
and no padding, whose weights are

    W'[o, (dy * t + dx) * C + c, KY, KX] = W[o, c, a * KY + dy, a * KX + dx]

for the one (KY, dy) with KY = min(ky // a, k' - 1), dy = ky - a * KY of each tap ky (and the
same along x); every other weight is zero. The packed input holds the same int8 values at the
same scale, explicit zeros where the conv padded, so every output is the same int32 sum in
another order (the accumulator wraps, so even the order of a wrap does not matter): bit-exact.
a = t = s is space-to-depth; a = s, t = k is im2col (a 1x1 conv).

`pack_inputs` tries every (a, t) on each graph input that only one conv reads (and that is not
a graph output) and keeps the one with the fewest chunk cycles, the bound the conv lowering
reports (`layers[i]["cycles"]`). The bound of a candidate is max(chunk cycles, the AXI beats
that read its packed input once), so a packing whose input cannot even be read in that time
does not win on paper; ties go to the smaller packed input. The original conv is kept unless
a packing is strictly better (a 16-channel input never packs on 16 lanes, for example).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hw.config import AcceleratorConfig
from hw.input_packing import InputPacking
from hw.layout import tensor_nbytes

from .codegen import LOWERINGS
from .errors import CompileError
from .memory import Placement
from .qgraph import QConv, QGraph, QTensor

__all__ = ["PackedInput", "pack_conv", "pack_inputs"]


@dataclass(frozen=True)
class PackedInput:
    """The packing chosen for one graph input, with the conv it rewrote."""
    packing: InputPacking
    original: QConv                  #: the conv as the quantized graph has it
    cycles_before: int               #: chunk cycles of the original conv, -1 if it cannot run
    cycles_after: int                #: chunk cycles of the packed conv


def _packing(op: QConv, out_shape: tuple[int, int, int], step: int, taps: int
             ) -> tuple[InputPacking, int, int]:
    """The input packing of `op` for (step, taps), the packed kernel and the packed stride."""
    k, s = op.kernel, op.stride
    if s % step or not (taps >= step or taps >= k):
        raise ValueError(f"step {step} must divide the stride {s}, and taps ({taps}) must "
                         f"be >= step or >= the kernel ({k})")
    kp = 1 if taps >= k else -(-(k - taps) // step) + 1
    sp = s // step
    _, oh, ow = out_shape
    packing = InputPacking(step=step, taps=taps, pad_top=op.pads[0], pad_left=op.pads[1],
                           height=sp * (oh - 1) + kp, width=sp * (ow - 1) + kp)
    return packing, kp, sp


def pack_conv(op: QConv, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int], *,
              step: int, taps: int) -> tuple[QConv, InputPacking, tuple[int, int, int]]:
    """The packed conv, the packing of its input and the packed input's shape."""
    packing, kp, sp = _packing(op, out_shape, step, taps)
    c, k, cout = in_shape[0], op.kernel, op.weight.shape[0]
    # Where tap ky lands: packed kernel row KY (`big`) and gathered row dy (`small`); the same
    # along x. The advanced indices put the (ky, kx) axes first, hence the transpose.
    big = np.minimum(np.arange(k) // step, kp - 1)
    small = np.arange(k) - step * big
    ky, kx = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    weight = np.zeros((cout, taps, taps, c, kp, kp), np.int8)
    weight[:, small[ky], small[kx], :, big[ky], big[kx]] = op.weight.transpose(2, 3, 0, 1)
    packed = replace(op, weight=weight.reshape(cout, taps * taps * c, kp, kp), stride=sp,
                     pads=(0, 0, 0, 0))
    return packed, packing, packing.packed_shape(in_shape)


def _chunk_cycles(op: QConv, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                  config: AcceleratorConfig) -> int | None:
    """The conv lowering's cycle bound for `op` reading `in_shape`, None if it cannot run."""
    graph = QGraph(tensors={op.input: QTensor(op.input, in_shape, 1.0),
                            op.output: QTensor(op.output, out_shape, 1.0)},
                   ops=[op], inputs=[op.input], outputs=[op.output])
    lanes = config.lanes
    placements = {name: Placement(address=0, groups=-(-t.shape[0] // lanes),
                                  height=t.shape[1], width=t.shape[2], channels=())
                  for name, t in graph.tensors.items()}
    lowering = LOWERINGS[QConv]
    try:
        return lowering.cycles(lowering.plan(op, graph, config, placements))
    except CompileError:
        return None


def _candidates(kernel: int, stride: int) -> list[tuple[int, int]]:
    """(step, taps) pairs worth trying: steps that divide the stride, taps up to the kernel
    that gather every tap."""
    return [(a, t) for a in range(1, stride + 1) if stride % a == 0
            for t in range(1, kernel + 1) if (t >= a or t == kernel) and (a, t) != (1, 1)]


def _choose(op: QConv, graph: QGraph, config: AcceleratorConfig
            ) -> tuple[QConv, PackedInput, tuple[int, int, int]] | None:
    in_shape = graph.tensors[op.input].shape
    out_shape = graph.tensors[op.output].shape
    beats = config.axi_data_bytes

    def cost(conv: QConv, shape: tuple[int, int, int]) -> tuple[int, int, int] | None:
        chunks = _chunk_cycles(conv, shape, out_shape, config)
        if chunks is None:
            return None
        nbytes = tensor_nbytes(shape, config.lanes)
        return max(chunks, -(-nbytes // beats)), chunks, nbytes

    before = cost(op, in_shape)
    blocks = -(-out_shape[0] // config.lanes) * out_shape[1] * out_shape[2]
    candidates = []
    for step, taps in _candidates(op.kernel, op.stride):
        packing, kp, sp = _packing(op, out_shape, step, taps)
        shape = packing.packed_shape(in_shape)
        nbytes = tensor_nbytes(shape, config.lanes)
        if nbytes > config.dram_bytes // 2:
            continue    # would crowd out everything else; such inputs stay as they are
        # No tiling runs fewer chunks than k'^2 channel groups per output pixel and block.
        floor = max(blocks * kp * kp * -(-shape[0] // config.lanes), -(-nbytes // beats))
        candidates.append((floor, step, taps, kp, sp, shape))
    best = None
    for floor, step, taps, kp, sp, shape in sorted(candidates):
        if best is not None and floor > best[0][0]:
            break       # the tiling search (~0.1 s on a big layer) cannot win any more
        # The cycle bound depends only on the shapes: zero weights stand in for the real ones.
        shaped = replace(op, weight=np.zeros((op.weight.shape[0], shape[0], kp, kp), np.int8),
                         stride=sp, pads=(0, 0, 0, 0))
        key = cost(shaped, shape)
        if key is not None and (best is None or key < best[0]):
            best = (key, step, taps)
    if best is None or (before is not None and best[0][0] >= before[0]):
        return None
    key, step, taps = best
    packed, packing, shape = pack_conv(op, in_shape, out_shape, step=step, taps=taps)
    return packed, PackedInput(packing=packing, original=op,
                               cycles_before=-1 if before is None else before[1],
                               cycles_after=key[1]), shape


def pack_inputs(graph: QGraph, config: AcceleratorConfig
                ) -> tuple[QGraph, dict[str, PackedInput]]:
    """`graph` with each packable input packed (see the module docstring), and the packings
    chosen by input name. The returned graph's packed input has its packed shape; the host
    must write `packing.pack(x)` there (hw.layout.write_tensor does)."""
    readers = {name: [op for op in graph.ops if name in op.inputs] for name in graph.inputs}
    tensors = dict(graph.tensors)
    ops = list(graph.ops)
    chosen: dict[str, PackedInput] = {}
    for name in graph.inputs:
        users = readers[name]
        if name in graph.outputs or len(users) != 1 or not isinstance(users[0], QConv):
            continue
        result = _choose(users[0], graph, config)
        if result is None:
            continue
        packed, info, shape = result
        ops[ops.index(users[0])] = packed
        tensors[name] = QTensor(name, shape, graph.tensors[name].scale)
        chosen[name] = info
    if not chosen:
        return graph, {}
    return QGraph(tensors=tensors, ops=ops, inputs=list(graph.inputs),
                  outputs=list(graph.outputs), name=graph.name), chosen
