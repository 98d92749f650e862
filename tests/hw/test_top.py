# amaranth: UnusedElaboratable=no
"""The whole accelerator: programs on the RTL equal the functional model, bit for bit, and the
Amaranth and Verilator simulations of the same program take the same number of cycles."""

import numpy as np
import pytest

from compiler.compile import compile_qgraph
from compiler.qgraph import QConv, QGraph, QPool, QTensor
from hw import isa
from hw.config import preset
from hw.isa import Activation, ErrorCode, PoolKind
from hw.lint import lint_verilog
from sim.dram_model import DramTiming
from sim.functional import FunctionalMachine
from sim.program_run import run_program
from sim.rtl_amaranth import run_amaranth
from sim.rtl_verilator import top_verilog

TINY = preset("tiny")


def small_network(rng, channels=5):
    """conv 3x3 (+ReLU) -> max pool 2x2 -> conv 1x1, on an 8x8 input of 3 channels."""
    def conv(name, src, dst, cin, cout, k, pads, act):
        return QConv(name, src, dst, rng.integers(-128, 128, (cout, cin, k, k)).astype(np.int8),
                     rng.integers(-2000, 2000, cout).astype(np.int32),
                     rng.integers(1 << 14, 1 << 15, cout).astype(np.int16),
                     rng.integers(14, 17, cout).astype(np.uint8), pads=pads, activation=act)

    tensors = {n: QTensor(n, s, 0.1) for n, s in (
        ("x", (3, 8, 8)), ("c1", (channels, 8, 8)), ("p", (channels, 4, 4)),
        ("y", (6, 4, 4)))}
    ops = [conv("conv1", "x", "c1", 3, channels, 3, (1, 1, 1, 1), Activation.RELU),
           QPool("pool", "c1", "p", PoolKind.MAX, kernel=2, stride=2),
           conv("conv2", "p", "y", channels, 6, 1, (0, 0, 0, 0), Activation.NONE)]
    return QGraph(tensors=tensors, ops=ops, inputs=["x"], outputs=["y"])


@pytest.fixture(scope="module")
def network_program():
    rng = np.random.default_rng(4)
    program = compile_qgraph(small_network(rng), TINY)
    x = rng.integers(-128, 128, (3, 8, 8)).astype(np.int8)
    return program, {"x": x}


def test_compiled_network_on_amaranth_equals_functional_model(network_program):
    program, inputs = network_program
    want = run_program(program, inputs, "isa")
    got = run_program(program, inputs, "amaranth")
    assert got.rtl.error is ErrorCode.NONE
    np.testing.assert_array_equal(got.outputs["y"], want.outputs["y"])
    # Counters: useful array cycles never exceed the run, and the run did some.
    assert 0 < got.rtl.counters["array_busy"] < got.rtl.cycles


def test_verilator_equals_amaranth_cycle_for_cycle(network_program):
    program, inputs = network_program
    a = run_program(program, inputs, "amaranth")
    v = run_program(program, inputs, "verilator")
    np.testing.assert_array_equal(v.outputs["y"], a.outputs["y"])
    assert v.rtl.counters == a.rtl.counters
    assert v.rtl.retirements == a.rtl.retirements


@pytest.mark.parametrize("latency,bytes_per_cycle", [(1, 4), (30, 1)])
def test_dram_timing_changes_cycles_not_results(network_program, latency, bytes_per_cycle):
    program, inputs = network_program
    run = run_program(program, inputs, "amaranth",
                      timing=DramTiming(latency=latency, bytes_per_cycle=bytes_per_cycle))
    np.testing.assert_array_equal(run.outputs["y"], run_program(program, inputs,
                                                                "isa").outputs["y"])


def _run_words(program_words, dram_extra=()):
    dram = np.zeros(TINY.dram_bytes, np.uint8)
    code = isa.encode_program(program_words)
    dram[:len(code)] = np.frombuffer(code, np.uint8)
    return run_amaranth(TINY, dram, program_address=0, program_length=len(program_words))


def test_illegal_instruction_stops_with_its_error_code():
    bad_word = isa.encode(isa.End()) | (15 << 0)   # opcode 15
    dram = np.zeros(TINY.dram_bytes, np.uint8)
    words = isa.encode_program([isa.Load(buffer=isa.Buffer.IBUF, size0=1, count1=1, count2=1)])
    dram[:32] = np.frombuffer(words, np.uint8)
    dram[32:64] = np.frombuffer(bad_word.to_bytes(32, "little"), np.uint8)
    result = run_amaranth(TINY, dram, program_address=0, program_length=2)
    assert (result.error, result.error_index) == (ErrorCode.ILLEGAL_OPCODE, 1)


def test_out_of_range_dma_stops_with_dram_range():
    result = _run_words([isa.Load(buffer=isa.Buffer.IBUF, dram_addr=TINY.dram_bytes - 4,
                                  size0=4, count1=1, count2=1), isa.End()])
    assert (result.error, result.error_index) == (ErrorCode.DRAM_RANGE, 0)


def test_buffer_overflow_stops_with_buffer_range():
    result = _run_words([isa.Add(a_addr=TINY.ibuf_words - 2, b_addr=0, count=8, mult_a=1),
                         isa.End()])
    assert (result.error, result.error_index) == (ErrorCode.BUFFER_RANGE, 0)


def test_deadlock_is_reported_not_hung():
    result = _run_words([isa.Add(pop_prev=True, count=1, mult_a=1), isa.End()])
    assert (result.error, result.error_index) == (ErrorCode.DEADLOCK, 1)


def test_top_verilog_is_lint_clean():
    lint_verilog(top_verilog(TINY), "top")


def test_load_into_obuf_beside_compute_writes():
    """A LOAD into the output buffer while an ADD writes another part of it: the two share
    the buffer's write port (compute first, one edge late; the load waits), and the DRAM
    afterwards equals the functional model's."""
    rng = np.random.default_rng(11)
    wb, n, base = TINY.word_bytes, 96, 4096
    program = [
        isa.Load(buffer=isa.Buffer.IBUF, dram_addr=base, size0=n, count1=1, count2=1,
                 push_next=True),
        isa.Load(buffer=isa.Buffer.OBUF, buf_addr=n, dram_addr=base + n * wb, size0=3 * n,
                 count1=1, count2=1, push_next=True),
        isa.Add(a_addr=0, b_addr=0, count=n, obuf_addr=0, mult_a=1 << 13, mult_b=-(1 << 12),
                shift=13, pop_prev=True),
        isa.Add(a_addr=0, b_addr=1, count=1, obuf_addr=4 * n, mult_a=1, pop_prev=True,
                push_next=True),
        isa.Store(buffer=isa.Buffer.OBUF, dram_addr=8192, size0=4 * n + 1, count1=1, count2=1,
                  pop_prev=True),
        isa.End(),
    ]
    dram = np.zeros(TINY.dram_bytes, np.uint8)
    code = isa.encode_program(program)
    dram[:len(code)] = np.frombuffer(code, np.uint8)
    dram[base:base + 4 * n * wb] = rng.integers(0, 256, 4 * n * wb, dtype=np.uint8)
    model = FunctionalMachine(TINY, dram)
    model.run(program)
    result = run_amaranth(TINY, dram, program_address=0, program_length=len(program))
    assert result.error is ErrorCode.NONE
    np.testing.assert_array_equal(dram, model.dram)
    assert dram[8192:8192 + (4 * n + 1) * wb].any()
