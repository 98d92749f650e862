"""cocotb scenarios for the accelerator top level (hw/top.py): runs in the simulator, launched
by tests/cocotb/test_top_cocotb.py through tests/cocotb/runner.py.

Every scenario writes programs and their data into the AxiRam DRAM model, starts the machine
through AXI-Lite as software does (PROG_ADDR, PROG_LEN, IRQ_ENABLE, CTRL.START), waits for
`irq`, checks STATUS and ERROR_CODE, clears the interrupt and compares the DRAM with the
functional model (sim/functional.py) run on the same image: every byte from address 0 to a
guard band past the last byte any STORE may write (so inputs, constants, program words,
intermediate tensors and untouched gaps are all checked, not just the outputs). Programs run
back to back without a reset between them, so every run after the first also checks restart.

Programs:
- hand-written token programs after tests/sim/test_functional.py (the functional model's own
  cases): a multi-pass convolution over two output blocks with LUT activation, max, average
  and global-average pooling from one input tile, an element-wise add with LUT activation,
  and the double-buffered LOAD/ADD/STORE pipeline with tokens in both directions (random
  tile count and size);
- seeded random compiled networks (compile_qgraph on random QGraphs): a first convolution
  with kernel 1, 3 or 5 and stride 1 or 2 (cycling with the seed), random padding and
  channels, two branches (a 3x3
  convolution and a 1x1 convolution or a 3x3/1 max pool) joined by an add or a concat, and a
  random tail (none, 2x2/2 max pool, 2x2/2 average pool or global average pool).

Scenarios (not named test_* so that pytest, which also imports this file, collects nothing):
`handwritten_plain`, `handwritten_shaped`, `compiled_plain`, `compiled_shaped` (shaped =
random backpressure and idle cycles on every AXI channel at once, tb.py's 30%) and
`illegal_instruction` (ILLEGAL_OPCODE and DRAM_RANGE read back with their instruction index,
then a clean run). Environment: SYSTOLICA_CONFIG (a preset name), SYSTOLICA_RANDOM_PROGRAMS
(how many random compiled networks, default 2) and SYSTOLICA_SEED (their first seed, default 1).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import cocotb
import numpy as np

from compiler.compile import compile_qgraph
from hw.axi.csr import Reg
from hw.config import AcceleratorConfig, preset
from hw.isa import (Activation, Add, Buffer, End, ErrorCode, Instruction, Load, Opcode,
                    Pool, PoolKind, Store, encode, encode_program)
from hw.program import Program
from sim.functional import FunctionalMachine, dma_word_offsets
from sim.program_run import prepare_dram
from tests.cocotb.tb import TB
from tests.compiler.codegen_util import GraphBuilder
from tests.sim.test_functional import (Image, blocked, conv_tile_program, param_word,
                                       pipeline, weight_words)

#: Bytes past the last byte a STORE may write that must still hold their initial contents.
GUARD_BYTES = 256
#: STATUS after a run: DONE, plus ERROR when the run stopped with an error code.
STATUS_DONE, STATUS_ERROR = 0b010, 0b110


def config() -> AcceleratorConfig:
    return preset(os.environ["SYSTOLICA_CONFIG"])


class Case(NamedTuple):
    """One program: the initial DRAM from address 0, where the program is, and the DRAM the
    functional model leaves over the window the check covers."""
    name: str
    image: bytes
    program_address: int
    program_length: int
    expected: bytes
    busy_bound: int      #: cycles after which a run counts as hung

    @classmethod
    def from_program(cls, name: str, cfg: AcceleratorConfig, image: bytes,
                     instructions: list[Instruction], program_address: int) -> Case:
        machine = FunctionalMachine(cfg, image)
        stats = machine.run(instructions)
        stores = [int(dma_word_offsets(i, cfg.word_bytes).max()) + cfg.word_bytes
                  for i in instructions if i.OPCODE is Opcode.STORE]
        end = max([len(image), *stores]) + GUARD_BYTES
        # Generous: a 30%-paused AXI beat costs under 4 cycles, a chunk one cycle, and the
        # fixed costs (fetch, fill, drain per instruction) stay far below 100 cycles each.
        beats = (stats.dram_read_bytes + stats.dram_write_bytes) // cfg.axi_data_bytes
        bound = 20_000 + 4 * beats + 4 * stats.conv_chunks + 100 * len(instructions)
        return cls(name, bytes(image), program_address, len(instructions),
                   machine.dram[:end].tobytes(), bound)


# ---- hand-written programs (the functional model's cases) ----------------------------------

def _placed(image: Image, instructions: list[Instruction]) -> tuple[bytes, int]:
    """The image with the program words appended at the next 32-byte boundary."""
    address = -(-len(image.data) // 32) * 32
    image.place(address, encode_program(instructions))
    return bytes(image.data), address


def conv_case(cfg: AcceleratorConfig, rng: np.random.Generator) -> Case:
    """3x3/2 convolution with padding, lanes+1 input channels (two groups, one partial) and
    columns+2 output channels (two blocks, two parameter words), in passes of 7 chunks that
    accumulate, LUT activation on the last pass of each block."""
    lanes = cols = cfg.lanes
    cin, cout, h, w, k, stride, pad, passes = lanes + 1, cols + 2, 9, 8, 3, 2, 1, 7
    out_h, out_w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    groups, blocks = -(-cin // lanes), -(-cout // cols)
    x = rng.integers(-128, 128, (cin, h, w)).astype(np.int8)
    wt = rng.integers(-128, 128, (cout, cin, k, k)).astype(np.int8)
    bias = rng.integers(-5000, 5000, cout)
    mult = rng.integers(1 << 13, 1 << 15, cout)
    shift = np.full(cout, 24)   # requantized values mostly inside int8 (std ~40-70)
    image = Image()
    image.place(0, blocked(x, lanes))
    words = np.concatenate([weight_words(wt[b * cols:(b + 1) * cols], lanes, cols)
                            for b in range(blocks)])
    a_w = image.place(-(-len(image.data) // 64) * 64, words.tobytes())
    a_p = image.place(-(-len(image.data) // 64) * 64, b"".join(
        param_word(bias[b * cols:], mult[b * cols:], shift[b * cols:], cols)
        for b in range(blocks)))
    a_lut = image.place(-(-len(image.data) // 64) * 64,
                        rng.integers(-128, 128, cfg.lut_words * lanes).astype(np.int8).tobytes())
    a_out = -(-len(image.data) // 64) * 64 + 1024
    program = conv_tile_program(
        h=h, w=w, groups=groups, k=k, stride=stride, pad_top=pad, pad_left=pad, out_h=out_h,
        out_w=out_w, blocks=blocks, columns=cols, pass_chunks=passes,
        activation=Activation.LUT, lut_words=cfg.lut_words,
        addresses=dict(a_in=0, a_w=a_w, a_lut=a_lut, a_p=a_p, a_out=a_out))
    data, address = _placed(image, program)
    return Case.from_program("conv", cfg, data, program, address)


def pool_case(cfg: AcceleratorConfig, rng: np.random.Generator) -> Case:
    """Max 3x3/2 with padding, average 2x2/2 and global average over one input tile of
    lanes+2 channels; the three results leave in one 2-D strided STORE each."""
    lanes = cfg.lanes
    c, h, w = lanes + 2, 9, 10
    groups = -(-c // lanes)
    image = Image()
    image.place(0, blocked(rng.integers(-128, 128, (c, h, w)).astype(np.int8), lanes))
    pools = [dict(kind=PoolKind.MAX, kernel=3, stride=2, pad_top=1, pad_left=1, out_h=5,
                  out_w=5, mult=3, shift=1),
             dict(kind=PoolKind.AVG, kernel=2, stride=2, out_h=4, out_w=5,
                  mult=1 << 14, shift=16),
             dict(kind=PoolKind.GLOBAL_AVG, kernel=0, stride=0, out_h=1, out_w=1,
                  mult=round((1 << 20) / (h * w)), shift=20)]
    a_out = 1 << 14
    program: list[Instruction] = [Load(buffer=Buffer.IBUF, size0=groups * h * w, count1=1,
                                       count2=1, push_next=True)]
    stores, obuf = [], 0
    for n, fields in enumerate(pools):
        pixels = fields["out_h"] * fields["out_w"]
        program.append(Pool(pop_prev=n == 0, push_next=True, in_h=h, in_w=w, groups=groups,
                            obuf_addr=obuf, **fields))
        # Rows of `pixels` words, one row per channel group, 64 bytes apart beyond the row.
        row = pixels * cfg.word_bytes
        stores.append(Store(pop_prev=True, buffer=Buffer.OBUF, buf_addr=obuf,
                            dram_addr=a_out + n * 4096, size0=pixels, count1=groups,
                            stride1=row + 64, count2=1))
        obuf += groups * pixels
    program += stores + [End()]
    data, address = _placed(image, program)
    return Case.from_program("pool", cfg, data, program, address)


def add_case(cfg: AcceleratorConfig, rng: np.random.Generator) -> Case:
    """Element-wise add of 37 words at odd buffer addresses, LUT activation."""
    lanes, count = cfg.lanes, 37
    wb = cfg.word_bytes
    image = Image()
    image.place(0, rng.integers(-128, 128, count * lanes).astype(np.int8).tobytes())
    a_b = image.place(64 * wb, rng.integers(-128, 128, count * lanes).astype(np.int8).tobytes())
    a_lut = image.place(128 * wb, rng.integers(-128, 128, cfg.lut_words * lanes)
                        .astype(np.int8).tobytes())
    program: list[Instruction] = [
        Load(buffer=Buffer.IBUF, buf_addr=5, size0=count, count1=1, count2=1),
        Load(buffer=Buffer.IBUF, buf_addr=100, dram_addr=a_b, size0=count, count1=1, count2=1),
        Load(buffer=Buffer.LUT, dram_addr=a_lut, size0=cfg.lut_words, count1=1, count2=1,
             push_next=True),
        Add(pop_prev=True, push_next=True, activation=Activation.LUT, a_addr=5, b_addr=100,
            count=count, obuf_addr=3, mult_a=11000, mult_b=-7000, shift=14),
        Store(pop_prev=True, buffer=Buffer.OBUF, buf_addr=3, dram_addr=256 * wb, size0=count,
              count1=1, count2=1),
        End()]
    data, address = _placed(image, program)
    return Case.from_program("add", cfg, data, program, address)


def pipeline_case(cfg: AcceleratorConfig, rng: np.random.Generator) -> Case:
    """test_functional.pipeline: 3 to 6 tiles of 1 to 12 words through two input and two
    output slots, tokens LOAD -> COMPUTE -> STORE and back (slot free)."""
    shape = (int(rng.integers(3, 7)), int(rng.integers(1, 13)), cfg.lanes)
    x = rng.integers(-128, 128, shape).astype(np.int8)
    image = Image()
    image.place(0, x.tobytes())
    program = pipeline(x, 1 << 13)
    data, address = _placed(image, program)
    return Case.from_program("pipeline", cfg, data, program, address)


def handwritten_cases(cfg: AcceleratorConfig) -> list[Case]:
    rng = np.random.default_rng(11)
    return [build(cfg, rng) for build in (conv_case, pool_case, add_case, pipeline_case)]


# ---- random compiled networks ----------------------------------------------------------------

def _activation(rng: np.random.Generator) -> Activation:
    return list(Activation)[int(rng.integers(len(Activation)))]


def random_network(cfg: AcceleratorConfig, seed: int) -> tuple[Program, dict[str, np.ndarray]]:
    """A random network (see the module docstring) on a small input, compiled for `cfg`."""
    rng = np.random.default_rng(seed)
    lanes = cfg.lanes
    g = GraphBuilder(name=f"random{seed}")
    shape = (int(rng.integers(1, 2 * lanes + 2)), int(rng.integers(5, 10)),
             int(rng.integers(5, 10)))
    x = g.input("x", shape)
    # Kernel and stride of the first layer cycle with the seed: any 6 consecutive seeds cover
    # kernels 1, 3, 5 at strides 1 and 2 (4 consecutive seeds: every kernel and stride).
    kernel, stride = (1, 3, 5)[seed % 3], 1 + seed // 3 % 2
    pad = int(rng.integers(0, kernel // 2 + 1))
    a = g.conv(rng, x, int(rng.integers(2, lanes + 3)), kernel, stride=stride,
               pads=(pad,) * 4, activation=_activation(rng))
    channels = g.tensors[a].shape[0]
    b1 = g.conv(rng, a, channels, 3, pads=(1,) * 4, activation=_activation(rng))
    if rng.random() < 0.5:
        b2 = g.conv(rng, a, channels, 1, activation=_activation(rng))
    else:
        b2 = g.pool(a, PoolKind.MAX, 3, 1, (1,) * 4)
    y = g.add(rng, b1, b2, _activation(rng)) if rng.random() < 0.5 else g.concat(b1, b2)
    tail = int(rng.integers(4))
    _, h, w = g.tensors[y].shape
    if tail == 1 and min(h, w) >= 2:
        y = g.pool(y, PoolKind.MAX, 2, 2)
    elif tail == 2 and min(h, w) >= 2:
        y = g.pool(y, PoolKind.AVG, 2, 2)
    elif tail == 3:
        y = g.pool(y, PoolKind.GLOBAL_AVG)
    program = compile_qgraph(g.graph([y]), cfg)
    inputs = {"x": rng.integers(-128, 128, shape).astype(np.int8)}
    return program, inputs


def compiled_cases(cfg: AcceleratorConfig, *, batch: int) -> list[Case]:
    """Batch 0, 1, ... of SYSTOLICA_RANDOM_PROGRAMS networks each, seeds counting up from
    SYSTOLICA_SEED (so the plain and the shaped scenario run different networks)."""
    count = int(os.environ.get("SYSTOLICA_RANDOM_PROGRAMS", "2"))
    first = int(os.environ.get("SYSTOLICA_SEED", "1")) + batch * count
    cases = []
    for seed in range(first, first + count):
        program, inputs = random_network(cfg, seed)
        image = prepare_dram(program, inputs)[:len(program.dram_image())].tobytes()
        cases.append(Case.from_program(f"random{seed}", cfg, image, program.instructions,
                                       program.program_address))
    return cases


# ---- running ---------------------------------------------------------------------------------

async def start(dut, *, seed: int) -> TB:
    cfg = config()
    tb = TB(dut, seed=seed, ram_bytes=cfg.dram_bytes)
    assert len(dut.m_axi_wdata) == cfg.axi_data_bits, "DUT built for another config"
    await tb.reset()
    return tb


async def run_case(tb: TB, case: Case) -> int:
    """Run one case on a DRAM cleared over its window; check it; return the CYCLES counter."""
    tb.write_mem(0, case.image + bytes(len(case.expected) - len(case.image)))
    status, error, index = await tb.launch(case.program_address, case.program_length,
                                           case.busy_bound)
    assert (status, error) == (STATUS_DONE, ErrorCode.NONE.value), \
        f"{case.name}: STATUS {status:#05b}, ERROR_CODE {error}, ERROR_INDEX {index}"
    got = tb.read_mem(0, len(case.expected))
    if got != case.expected:
        diff = np.flatnonzero(np.frombuffer(got, np.uint8) != np.frombuffer(case.expected,
                                                                             np.uint8))
        raise AssertionError(f"{case.name}: {len(diff)} DRAM bytes differ from the functional "
                             f"model, first at 0x{diff[0]:x}: got {got[diff[0]]:#04x}, "
                             f"expected {case.expected[diff[0]]:#04x}")
    cycles = await tb.read_reg(Reg.COUNTERS) | await tb.read_reg(Reg.COUNTERS + 4) << 32
    tb.log.info("%s: %d instructions, %d DRAM bytes checked, %d cycles", case.name,
                case.program_length, len(case.expected), cycles)
    return cycles


async def run_cases(dut, cases: list[Case], *, seed: int, shaped: bool) -> None:
    tb = await start(dut, seed=seed)
    tb.set_backpressure(shaped)
    tb.set_idle(shaped)
    for case in cases:
        await run_case(tb, case)


@cocotb.test()
async def handwritten_plain(dut):
    await run_cases(dut, handwritten_cases(config()), seed=1, shaped=False)


@cocotb.test()
async def handwritten_shaped(dut):
    await run_cases(dut, handwritten_cases(config()), seed=2, shaped=True)


@cocotb.test()
async def compiled_plain(dut):
    await run_cases(dut, compiled_cases(config(), batch=0), seed=3, shaped=False)


@cocotb.test()
async def compiled_shaped(dut):
    await run_cases(dut, compiled_cases(config(), batch=1), seed=4, shaped=True)


@cocotb.test()
async def illegal_instruction(dut):
    """An illegal opcode and an out-of-range LOAD stop the run with their error code and
    instruction index in the registers; a good program then runs normally."""
    cfg = config()
    tb = await start(dut, seed=5)
    good = Load(buffer=Buffer.IBUF, size0=1, count1=1, count2=1)
    illegal_opcode = encode(End()) | 15          # opcode 15 names no instruction
    far = Load(buffer=Buffer.IBUF, dram_addr=cfg.dram_bytes - cfg.word_bytes, size0=2,
               count1=1, count2=1)
    for words, error, index in [
            (encode_program([good]) + illegal_opcode.to_bytes(32, "little"),
             ErrorCode.ILLEGAL_OPCODE, 1),
            (encode_program([good, good, far, End()]), ErrorCode.DRAM_RANGE, 2)]:
        tb.write_mem(0x400, words)
        got = await tb.launch(0x400, len(words) // 32, timeout_cycles=5_000)
        assert got == (STATUS_ERROR, error.value, index), \
            f"expected {error.name} at instruction {index}, read STATUS/ERROR_CODE/INDEX {got}"
    await run_case(tb, handwritten_cases(cfg)[2])
