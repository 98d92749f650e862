"""The program file: round trip, and every way a file can be bad is refused before running."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from hw.config import PRESETS
from hw.isa import INSTR_BYTES, Activation, Buffer, Conv, End, Load, Store, encode_program
from hw.program import FORMAT_VERSION, MAGIC, Program, ProgramError, Segment, TensorInfo

TINY, DEFAULT = PRESETS["tiny"], PRESETS["default"]
PREAMBLE = struct.Struct("<4sHHI")


def sample_program(config=TINY) -> Program:
    rng = np.random.default_rng(0)
    return Program(
        config=config,
        instructions=[
            Load(buffer=Buffer.IBUF, dram_addr=4096, size0=64, count1=1, count2=1,
                 push_next=True),
            Conv(pop_prev=True, push_next=True, output=1, activation=Activation.RELU, in_h=8,
                 in_w=8, in_groups=1, kernel=3, stride=1, pad_top=1, pad_left=1, out_h=8,
                 out_w=8, chunk_count=9),
            Store(pop_prev=True, buffer=Buffer.OBUF, dram_addr=8192, size0=64, count1=1,
                  count2=1),
            End(),
        ],
        segments=[Segment("input", 4096, rng.integers(0, 256, 256, np.uint8).tobytes()),
                  Segment("weights", 6144, rng.integers(0, 256, 1000, np.uint8).tobytes())],
        inputs=[TensorInfo(name="x", address=4096, shape=(1, 3, 8, 8), scale=0.02,
                           channels=(0, 1, 2))],
        outputs=[TensorInfo(name="y", address=8192, shape=(1, 4, 8, 8), scale=0.1)],
        program_address=0,
        layers=[{"name": "conv1", "op": "conv"}],
        meta={"compiler": "test", "seed": 0},
        attachments={"graph": b"golden model bytes"},
    )


def split(blob: bytes) -> tuple[dict, bytes]:
    """(header, payload) of a well-formed file."""
    head_len = PREAMBLE.unpack_from(blob)[3]
    head = json.loads(blob[PREAMBLE.size:PREAMBLE.size + head_len])
    return head, blob[PREAMBLE.size + head_len:-32]


def assemble(header, payload: bytes, *, magic=MAGIC, version=FORMAT_VERSION, reserved=0,
             head: bytes | None = None) -> bytes:
    """A file with a correct checksum around any header and payload."""
    head = json.dumps(header).encode() if head is None else head
    body = PREAMBLE.pack(magic, version, reserved, len(head)) + head + payload
    return body + hashlib.sha256(body).digest()


# ---- round trip ----------------------------------------------------------------------------

@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=lambda c: c.name)
def test_round_trip(tmp_path, config):
    program = sample_program(config)
    path = tmp_path / "p.sysp"
    program.save(path)
    back = Program.load(path)
    assert back == program
    assert Program.load(path, config=config) == program
    assert back.to_bytes() == program.to_bytes() == path.read_bytes()
    blob = path.read_bytes()
    assert blob[:4] == MAGIC and PREAMBLE.unpack_from(blob)[1] == FORMAT_VERSION


def test_dram_image():
    program = sample_program()
    image = program.dram_image()
    assert len(image) == 6144 + 1000
    assert image[:4 * INSTR_BYTES] == encode_program(program.instructions)
    for s in program.segments:
        assert image[s.address:s.address + len(s.data)] == s.data
    assert program.program_bytes == 4 * INSTR_BYTES


def test_header_keys():
    header, payload = split(sample_program().to_bytes())
    assert set(header) == {"config", "config_fingerprint", "program_address", "instructions",
                           "segments", "inputs", "outputs", "layers", "meta", "attachments"}
    assert header["config_fingerprint"] == TINY.fingerprint
    assert header["instructions"] == {"offset": 0, "length": 4 * INSTR_BYTES}
    assert [s["offset"] for s in header["segments"]] == [128, 384]
    assert header["attachments"] == {"graph": {"offset": 1384, "length": 18}}
    assert len(payload) == 128 + 256 + 1000 + 18


# ---- corruption ----------------------------------------------------------------------------

def test_flipped_bits_rejected():
    blob = sample_program().to_bytes()
    rng = np.random.default_rng(1)
    positions = sorted({*range(0, 12 * 8), *rng.integers(0, 8 * len(blob), 400).tolist(),
                        *range(8 * len(blob) - 64, 8 * len(blob))})
    for bit in positions:
        bad = bytearray(blob)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProgramError):
            Program.from_bytes(bytes(bad))


def test_truncation_rejected():
    blob = sample_program().to_bytes()
    rng = np.random.default_rng(2)
    lengths = sorted({*range(0, 80), *rng.integers(0, len(blob), 200).tolist(), len(blob) - 1})
    for n in lengths:
        with pytest.raises(ProgramError, match="too short|checksum|not a Systolica"):
            Program.from_bytes(blob[:n])
    with pytest.raises(ProgramError, match="checksum"):
        Program.from_bytes(blob + b"\0")


def test_wrong_magic():
    header, payload = split(sample_program().to_bytes())
    with pytest.raises(ProgramError, match="not a Systolica program"):
        Program.from_bytes(assemble(header, payload, magic=b"ELF\x7f"))


@pytest.mark.parametrize("version", [0, FORMAT_VERSION + 1, 0xFFFF])
def test_wrong_version(version):
    blob = bytearray(sample_program().to_bytes())
    blob[4:6] = version.to_bytes(2, "little")
    # The version is checked before the checksum: a newer file says so, not "corrupted".
    with pytest.raises(ProgramError, match=f"format version {version} is not supported"):
        Program.from_bytes(bytes(blob))


def test_reserved_preamble_field():
    header, payload = split(sample_program().to_bytes())
    with pytest.raises(ProgramError, match="reserved"):
        Program.from_bytes(assemble(header, payload, reserved=1))


def test_missing_file(tmp_path):
    with pytest.raises(ProgramError, match="cannot read program"):
        Program.load(tmp_path / "none.sysp")


# ---- config --------------------------------------------------------------------------------

def test_config_mismatch_names_the_fields():
    blob = sample_program(TINY).to_bytes()
    with pytest.raises(ProgramError) as info:
        Program.from_bytes(blob, config=DEFAULT, source="net.sysp")
    msg = str(info.value)
    assert msg.startswith("net.sysp: built for config 'tiny', cannot run on 'default'")
    assert "rows=4 (here 16)" in msg and "columns=4 (here 16)" in msg
    assert "contexts" not in msg            # equal fields are not listed


def test_config_mismatch_in_one_field():
    other = TINY.replace(token_depth=4)
    with pytest.raises(ProgramError, match=r"differs in token_depth=8 \(here 4\)$"):
        Program.from_bytes(sample_program(TINY).to_bytes(), config=other)


def test_embedded_config_checks():
    header, payload = split(sample_program().to_bytes())
    header["config"]["rows"] = 3
    with pytest.raises(ProgramError, match="embedded config is invalid.*'rows'"):
        Program.from_bytes(assemble(header, payload))
    header, payload = split(sample_program().to_bytes())
    header["config"]["contexts"] = 8            # valid, but not what the fingerprint says
    with pytest.raises(ProgramError, match="does not match its fingerprint"):
        Program.from_bytes(assemble(header, payload))


# ---- DRAM regions --------------------------------------------------------------------------

@pytest.mark.parametrize("segments, program_address, match", [
    ([Segment("a", 4096, bytes(100)), Segment("b", 4150, bytes(10))], 0, "overlaps"),
    ([Segment("a", 64, bytes(10))], 0, "segment 'a' .* overlaps|program .* overlaps"),
    ([Segment("a", TINY.dram_bytes - 4, bytes(8))], 0, "outside"),
    ([Segment("a", -8, bytes(8))], 64, "outside"),
    ([], TINY.dram_bytes - INSTR_BYTES, "outside"),
    ([], 16, "not a multiple"),
])
def test_bad_regions(segments, program_address, match):
    program = sample_program()
    program.segments = segments
    program.program_address = program_address
    with pytest.raises(ProgramError, match=match):
        program.to_bytes()
    # A file written by something else with the same regions is refused on loading.
    good = sample_program()
    good.segments = [Segment(s.name, 4096 + 2048 * i, s.data) for i, s in enumerate(segments)]
    header, payload = split(good.to_bytes())
    for entry, s in zip(header["segments"], segments):
        entry["address"] = s.address
    header["program_address"] = program_address
    with pytest.raises(ProgramError, match=match):
        Program.from_bytes(assemble(header, payload))


def test_tensor_outside_dram():
    program = sample_program()
    program.outputs = [TensorInfo(name="y", address=TINY.dram_bytes, shape=(1,), scale=1.0)]
    with pytest.raises(ProgramError, match="tensor 'y'"):
        program.to_bytes()


# ---- instructions and header structure -----------------------------------------------------

def test_undecodable_instruction_rejected():
    header, payload = split(sample_program().to_bytes())
    bad = bytearray(payload)
    bad[INSTR_BYTES] = 0x0D                     # instruction 1: opcode 13
    with pytest.raises(ProgramError, match="instruction 1: opcode 13"):
        Program.from_bytes(assemble(header, bytes(bad)))
    bad = bytearray(payload)
    bad[2 * INSTR_BYTES + 31] = 0x80            # instruction 2: a reserved bit
    with pytest.raises(ProgramError, match="instruction 2: .*reserved"):
        Program.from_bytes(assemble(header, bytes(bad)))
    header["instructions"]["length"] -= 1       # not a whole number of words
    with pytest.raises(ProgramError, match="whole number"):
        Program.from_bytes(assemble(header, payload))


def test_sections_outside_payload():
    header, payload = split(sample_program().to_bytes())
    header["segments"][1]["length"] = len(payload)
    with pytest.raises(ProgramError, match="section weights .* outside"):
        Program.from_bytes(assemble(header, payload))
    header, payload = split(sample_program().to_bytes())
    header["attachments"]["graph"]["length"] += 1      # the last section, one byte too long
    with pytest.raises(ProgramError, match="section attachment 'graph' .* outside"):
        Program.from_bytes(assemble(header, payload))
    header, payload = split(sample_program().to_bytes())
    header["instructions"]["offset"] = -32
    with pytest.raises(ProgramError, match="section instructions"):
        Program.from_bytes(assemble(header, payload))


def test_header_not_json():
    _, payload = split(sample_program().to_bytes())
    for head in [b"{not json", b"\xff\xfe", b""]:
        with pytest.raises(ProgramError, match="not valid JSON"):
            Program.from_bytes(assemble(None, payload, head=head))


def test_header_length_past_end():
    blob = bytearray(sample_program().to_bytes())
    blob[8:12] = (len(blob)).to_bytes(4, "little")
    body = bytes(blob[:-32])
    with pytest.raises(ProgramError, match="runs past the end"):
        Program.from_bytes(body + hashlib.sha256(body).digest())


@pytest.mark.parametrize("replacement", [None, 5, "x", [], {}, [1, 2], {"offset": "a"}])
def test_malformed_header_values(replacement):
    """Every top-level and nested header value replaced by a wrong type: the loader either
    accepts it (e.g. an empty list of tensors) or raises ProgramError, never anything else."""
    header, payload = split(sample_program().to_bytes())
    paths = [(k,) for k in header] + [("segments", 0), ("inputs", 0), ("segments", 0, "name"),
                                      ("inputs", 0, "shape"), ("instructions", "offset"),
                                      ("attachments", "graph")]
    for path in paths:
        mutated = json.loads(json.dumps(header))
        node = mutated
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = replacement
        try:
            Program.from_bytes(assemble(mutated, payload))
        except ProgramError:
            pass
    with pytest.raises(ProgramError, match="malformed header"):
        Program.from_bytes(assemble([1, 2], payload))
