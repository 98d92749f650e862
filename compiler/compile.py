"""Quantized graph -> program: placement, tiling, code generation, token scheduling.

DRAM map of a compiled program (all regions 64-byte aligned):

    [0, A)            activation arena (compiler/memory.py; inputs, outputs, intermediates)
    [A, P)            constant segments: two scratch words for token barriers, then per layer
                      its lookup table, weight sets and parameter words
    [P, P + 32 n)     the n instruction words (program_address = P)

Before placement, `compiler.input_packing.pack_inputs` may rewrite a few-channel first conv to
read its input packed (kernel taps gathered into channels by the host); the program records
the packing in the input's tensor map entry, and `hw.layout.write_tensor` applies it.

Host ops (`QHost`, e.g. softmax with --host-fallback) are not compiled: `compile_qgraph` raises
`CompileError` naming the node. Host ops at the end of a network are split off first with
`compiler.host_split.split_host_tail` and run after the program with `run_host_tail`.
"""

from __future__ import annotations

from typing import Any

from hw.config import AcceleratorConfig
from hw.isa import INSTR_BYTES
from hw.layout import tensor_nbytes
from hw.program import Program, Segment, TensorInfo

from .codegen import LOWERINGS
from .codegen.context import CodegenContext, LayerStats
from .codegen.schedule import TokenScheduler
from .errors import CompileError
from .input_packing import pack_inputs as _pack_inputs
from .memory import ConstantAllocator, align_up, plan_memory
from .qgraph import QConcat, QGraph

__all__ = ["CompileError", "compile_qgraph", "layer_report"]


def compile_qgraph(graph: QGraph, config: AcceleratorConfig, *,
                   pack_inputs: bool = True) -> Program:
    """Compile a quantized graph for `config` (see the module docstring for the DRAM map).

    `pack_inputs=False` keeps every input as it is (no input packing, for comparisons)."""
    if not isinstance(pack_inputs, bool):
        raise TypeError(f"pack_inputs must be a bool, not {pack_inputs!r}")
    lanes = config.lanes
    original = graph
    graph, packed = _pack_inputs(graph, config) if pack_inputs else (graph, {})
    packed_ops = {p.original.name: p for p in packed.values()}
    memory = plan_memory(graph, lanes=lanes, base=0)
    constants = ConstantAllocator(base=memory.end, alignment=config.pbuf_word_bytes)
    scratch = constants.add("scratch", bytes(2 * config.word_bytes))
    scheduler = TokenScheduler(config, dram_scratch=scratch)
    ctx = CodegenContext(config=config, scheduler=scheduler, constants=constants,
                         placements=memory.placements)
    layers: list[dict[str, Any]] = []
    for op in graph.ops:
        # Index of the layer's first instruction (token barriers included) in the program.
        first = len(scheduler.items)
        if isinstance(op, QConcat):
            layers.append({"name": op.name, "kind": "concat", "macs": 0, "tiles": 0,
                           "dram_bytes": 0, "dram_read_bytes": 0, "dram_write_bytes": 0,
                           "compulsory_bytes": 0, "cycles": 0, "instructions": 0,
                           "first_instruction": first})
            continue
        lowering = LOWERINGS[type(op)]
        ctx.stats = LayerStats()
        plan = lowering.plan(op, graph, config, memory.placements)
        lowering.emit(op, plan, ctx)
        activations = sum(tensor_nbytes(graph.tensors[t].shape, lanes,
                                        memory.placements[t].channels)
                          for t in (*op.inputs, op.output))
        s = ctx.stats
        extra: dict[str, Any] = {}
        if op.name in packed_ops:
            p = packed_ops[op.name]
            # MACs of the network's conv, not of the zero taps the packed kernel adds.
            _, oh, ow = graph.tensors[op.output].shape
            extra = {"macs": int(p.original.weight.size) * oh * ow,
                     "input_packing": p.packing.to_json(), "cycles_unpacked": p.cycles_before}
        layers.append({
            "name": op.name, "kind": lowering.kind, "macs": lowering.macs(plan),
            "tiles": s.tiles, "dram_bytes": s.dram_read + s.dram_write,
            "dram_read_bytes": s.dram_read, "dram_write_bytes": s.dram_write,
            "compulsory_bytes": activations + s.constant_bytes,
            "cycles": lowering.cycles(plan), "instructions": s.instructions,
            "first_instruction": first, **extra,
        })
    instructions = scheduler.program()
    program_address = align_up(constants.top, INSTR_BYTES)
    end = program_address + len(instructions) * INSTR_BYTES
    if end > config.dram_bytes:
        raise CompileError(f"network {graph.name!r}: activations, constants and program need "
                           f"{end} bytes, more than the {config.dram_bytes}-byte DRAM of "
                           f"config {config.name!r}")

    def info(name: str) -> TensorInfo:
        pl, t = memory.placements[name], original.tensors[name]
        return TensorInfo(name=name, address=pl.address, shape=(1, *t.shape), scale=t.scale,
                          channels=pl.channels,
                          packing=packed[name].packing if name in packed else None)

    return Program(
        config=config, instructions=instructions,
        segments=[Segment(name, address, data) for name, address, data in constants.segments],
        inputs=[info(n) for n in graph.inputs], outputs=[info(n) for n in graph.outputs],
        program_address=program_address, layers=layers,
        meta={"network": graph.name, "barrier_instructions": scheduler.dummy_count,
              "activation_bytes": memory.end})


def layer_report(program: Program) -> str:
    """A text table of the per-layer figures the compiler recorded."""
    head = f"{'layer':<24} {'kind':<6} {'MACs':>12} {'tiles':>6} {'cycles':>10} " \
           f"{'DRAM bytes':>11} {'minimum':>11} {'ratio':>6}"
    lines = [head, "-" * len(head)]
    total_moved = total_min = 0
    for layer in program.layers:
        moved, minimum = layer["dram_bytes"], layer["compulsory_bytes"]
        total_moved, total_min = total_moved + moved, total_min + minimum
        ratio = f"{moved / minimum:.2f}" if minimum else "-"
        lines.append(f"{layer['name'][:24]:<24} {layer['kind']:<6} {layer['macs']:>12} "
                     f"{layer['tiles']:>6} {layer['cycles']:>10} {moved:>11} {minimum:>11} "
                     f"{ratio:>6}")
    ratio = f"{total_moved / total_min:.2f}" if total_min else "-"
    lines.append(f"{'total':<24} {'':<6} {sum(x['macs'] for x in program.layers):>12} "
                 f"{sum(x['tiles'] for x in program.layers):>6} "
                 f"{sum(x['cycles'] for x in program.layers):>10} {total_moved:>11} "
                 f"{total_min:>11} {ratio:>6}")
    return "\n".join(lines)
