"""Input packing on the host side (hw/input_packing.py): the gather it documents, its entry in
the program file (format version 2; corrupted entries refused before anything runs) and
hw.layout.write_tensor, the one place where an input becomes DRAM bytes."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from compiler.compile import compile_qgraph
from compiler.qgraph import QGraph
from hw.config import preset
from hw.input_packing import InputPacking
from hw.layout import read_tensor, to_blocked, write_tensor
from hw.program import FORMAT_VERSION, Program, ProgramError
from sim.program_run import prepare_dram
from tests.compiler.codegen_util import GraphBuilder

TINY = preset("tiny")
PREAMBLE = struct.Struct("<4sHHI")


def test_pack_is_the_documented_gather():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (3, 9, 7)).astype(np.int8)
    p = InputPacking(step=2, taps=3, pad_top=1, pad_left=2, height=5, width=4)
    got = p.pack(x)
    assert got.shape == p.packed_shape(x.shape) == (27, 5, 4)
    for dy in range(3):
        for dx in range(3):
            for c in range(3):
                for yy in range(5):
                    for xx in range(4):
                        sy, sx = 2 * yy + dy - 1, 2 * xx + dx - 2
                        want = x[c, sy, sx] if 0 <= sy < 9 and 0 <= sx < 7 else 0
                        assert got[(dy * 3 + dx) * 3 + c, yy, xx] == want


def test_pack_checks_its_input():
    p = InputPacking(step=1, taps=2, pad_top=0, pad_left=0, height=2, width=2)
    with pytest.raises(ValueError, match="int8"):
        p.pack(np.zeros((1, 3, 3), np.int16))
    with pytest.raises(ValueError, match="step must be >= 1"):
        InputPacking(step=0, taps=2, pad_top=0, pad_left=0, height=2, width=2)


def _one_conv(rng: np.random.Generator, cin: int) -> QGraph:
    b = GraphBuilder()
    x = b.input("x", (cin, 12, 12))
    return b.graph([b.conv(rng, x, 4, 3, pads=(1, 1, 1, 1))])


def _packed_program() -> Program:
    return compile_qgraph(_one_conv(np.random.default_rng(5), 3), TINY)


def _split(blob: bytes) -> tuple[int, dict, bytes]:
    _, version, _, head_len = PREAMBLE.unpack_from(blob)
    head = json.loads(blob[PREAMBLE.size:PREAMBLE.size + head_len])
    return version, head, blob[PREAMBLE.size + head_len:-32]


def _assemble(header: dict, payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    head = json.dumps(header).encode()
    body = PREAMBLE.pack(b"SYSP", version, 0, len(head)) + head + payload
    return body + hashlib.sha256(body).digest()


def test_packing_round_trips_in_the_program_file():
    program = _packed_program()
    blob = program.to_bytes()
    version, header, _ = _split(blob)
    assert version == FORMAT_VERSION == 2
    assert header["inputs"][0]["packing"] == program.inputs[0].packing.to_json()
    loaded = Program.from_bytes(blob, config=TINY)
    assert loaded.inputs == program.inputs
    assert loaded.inputs[0].stored_shape == (27, 12, 12)


def test_version_1_files_still_load_but_cannot_carry_a_packing():
    rng = np.random.default_rng(6)
    plain = compile_qgraph(_one_conv(rng, 16), TINY)
    _, header, payload = _split(plain.to_bytes())
    assert "packing" not in header["inputs"][0]
    assert Program.from_bytes(_assemble(header, payload, version=1)).inputs == plain.inputs
    _, header, payload = _split(_packed_program().to_bytes())
    with pytest.raises(ProgramError, match="packing needs format version 2"):
        Program.from_bytes(_assemble(header, payload, version=1))


@pytest.mark.parametrize("packing,match", [
    ({"step": 0, "taps": 1, "pad_top": 0, "pad_left": 0, "height": 4, "width": 4}, "step"),
    ({"step": 1, "taps": 3, "pad_top": -1, "pad_left": 0, "height": 4, "width": 4}, "pads"),
    ({"step": 1, "taps": 3, "pad_top": 0, "pad_left": 0, "height": 0, "width": 4}, "height"),
    ({"step": 1, "taps": 3, "pad_top": 0, "pad_left": 0, "height": 4}, "exactly the keys"),
    ({"step": "1", "taps": 3, "pad_top": 0, "pad_left": 0, "height": 4, "width": 4}, "int"),
    ([1, 3, 0, 0, 4, 4], "exactly the keys"),
    ({"step": 1, "taps": 3, "pad_top": 0, "pad_left": 0, "height": 1 << 20,
      "width": 1 << 20}, "outside"),
])
def test_corrupted_packing_is_refused_before_running(packing, match):
    _, header, payload = _split(_packed_program().to_bytes())
    header["inputs"][0]["packing"] = packing
    with pytest.raises(ProgramError, match=match):
        Program.from_bytes(_assemble(header, payload))


def test_packing_on_an_output_or_a_channel_map_is_refused():
    _, header, payload = _split(_packed_program().to_bytes())
    bad = json.loads(json.dumps(header))
    bad["outputs"][0]["packing"] = header["inputs"][0]["packing"]
    with pytest.raises(ProgramError, match="only inputs are packed"):
        Program.from_bytes(_assemble(bad, payload))
    bad = json.loads(json.dumps(header))
    bad["inputs"][0]["channels"] = [2, 1, 0]
    with pytest.raises(ProgramError, match="identity channel map"):
        Program.from_bytes(_assemble(bad, payload))


def test_layout_writes_packed_and_refuses_to_read_back():
    program = _packed_program()
    info = program.inputs[0]
    x = np.random.default_rng(8).integers(-128, 128, (3, 12, 12)).astype(np.int8)
    dram = prepare_dram(program, {"x": x})
    blob = to_blocked(info.packing.pack(x), TINY.lanes)
    assert bytes(dram[info.address:info.address + len(blob)]) == blob
    mine = bytearray()
    write_tensor(mine, info, x, TINY.lanes)
    assert bytes(mine[info.address:]) == blob
    with pytest.raises(ValueError, match="packed input"):
        read_tensor(dram, info, TINY.lanes)
