"""The program file (`.sysp`): what the compiler writes and every simulator and runtime loads.

Layout (all integers little-endian; full description in docs/program-format.md):

    0   4  magic b"SYSP"
    4   2  format version (FORMAT_VERSION)
    6   2  reserved, zero
    8   4  header length H in bytes
    12  H  header: UTF-8 JSON (config, config fingerprint, sections, tensor map, layers, meta,
           attachments)
    ..     payload: the sections' bytes, at the offsets the header gives
    -32 32 SHA-256 of every byte before it

Loading checks, in this order and before anything runs: size, magic, version, checksum,
header, the embedded config and its fingerprint, that the program was built for exactly the
configuration the caller names (when it names one), sections, instructions (every word must
decode), DRAM regions (inside the configured DRAM, no overlaps).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import AcceleratorConfig, ConfigError
from .input_packing import InputPacking
from .isa import INSTR_BYTES, IllegalInstruction, Instruction, decode_program, encode_program

__all__ = ["MAGIC", "FORMAT_VERSION", "READABLE_VERSIONS", "ProgramError", "Segment",
           "TensorInfo", "Program"]

MAGIC = b"SYSP"
#: Version 2 added the `packing` of input tensor map entries, which a version-1 reader would
#: ignore and so write the input unpacked (wrong results): see docs/program-format.md.
FORMAT_VERSION = 2
#: Versions this build reads: version-1 files are version-2 files without packing.
READABLE_VERSIONS = (1, 2)
_PREAMBLE = struct.Struct("<4sHHI")
_DIGEST = 32


class ProgramError(ValueError):
    """A program file that cannot be loaded: truncated, corrupted, or built for another config."""


@dataclass(frozen=True)
class Segment:
    """Bytes placed in DRAM at `address` before the program starts (weights, parameters,...)."""
    name: str
    address: int
    data: bytes


@dataclass(frozen=True)
class TensorInfo:
    """Where a network input or output lives in DRAM and how to convert it.

    `shape` is the logical NCHW shape (N = 1); in DRAM the tensor is int8 in blocked layout
    (C/lanes, H, W, lanes) starting at `address`, channel c of the logical tensor stored at
    physical channel `channels[c]` (identity when `channels` is empty). A real value is
    `scale * q`.

    An input with a `packing` (hw/input_packing.py) is stored packed: DRAM holds
    `packing.pack(x)`, of shape `stored_shape`, in blocked layout with the identity channel map.
    """
    name: str
    address: int
    shape: tuple[int, ...]
    scale: float
    channels: tuple[int, ...] = ()
    packing: InputPacking | None = None

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """The [C, H, W] array in DRAM: the logical one, or the packed one."""
        if self.packing is None:
            return tuple(self.shape[-3:])
        return self.packing.packed_shape(self.shape)

    def to_json(self) -> dict[str, Any]:
        d = {"name": self.name, "address": self.address, "shape": list(self.shape),
             "scale": self.scale, "channels": list(self.channels)}
        if self.packing is not None:
            d["packing"] = self.packing.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TensorInfo:
        packing = d.get("packing")
        return cls(name=str(d["name"]), address=int(d["address"]),
                   shape=tuple(int(x) for x in d["shape"]), scale=float(d["scale"]),
                   channels=tuple(int(x) for x in d.get("channels", ())),
                   packing=None if packing is None else InputPacking.from_json(packing))


@dataclass
class Program:
    """A compiled program: instructions, initial DRAM contents and the tensor map."""
    config: AcceleratorConfig
    instructions: list[Instruction]
    segments: list[Segment] = field(default_factory=list)
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    program_address: int = 0
    layers: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    #: Named blobs that travel with the program but are not placed in DRAM (for example the
    #: serialised quantized graph that the reference backend executes).
    attachments: dict[str, bytes] = field(default_factory=dict)

    # ---- writing ---------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        self.validate()
        blobs: list[bytes] = []
        offset = 0

        def add(blob: bytes) -> dict[str, int]:
            nonlocal offset
            blobs.append(blob)
            entry = {"offset": offset, "length": len(blob)}
            offset += len(blob)
            return entry

        header = {
            "config": self.config.to_dict(),
            "config_fingerprint": self.config.fingerprint,
            "program_address": self.program_address,
            "instructions": add(encode_program(self.instructions)),
            "segments": [{"name": s.name, "address": s.address, **add(s.data)}
                         for s in self.segments],
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "layers": self.layers,
            "meta": self.meta,
            "attachments": {name: add(blob) for name, blob in sorted(self.attachments.items())},
        }
        head = json.dumps(header, sort_keys=True).encode()
        body = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, 0, len(head)) + head + b"".join(blobs)
        return body + hashlib.sha256(body).digest()

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    # ---- reading ---------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, blob: bytes, *, config: AcceleratorConfig | None = None,
                   source: str = "program") -> Program:
        if len(blob) < _PREAMBLE.size + _DIGEST:
            raise ProgramError(f"{source}: {len(blob)} bytes is too short for a program file "
                               f"(at least {_PREAMBLE.size + _DIGEST})")
        magic, version, reserved, head_len = _PREAMBLE.unpack_from(blob)
        if magic != MAGIC:
            raise ProgramError(f"{source}: not a Systolica program (magic {magic!r}, "
                               f"expected {MAGIC!r})")
        if version not in READABLE_VERSIONS:
            raise ProgramError(f"{source}: format version {version} is not supported "
                               f"(this build reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))})")
        body, digest = blob[:-_DIGEST], blob[-_DIGEST:]
        if hashlib.sha256(body).digest() != digest:
            raise ProgramError(f"{source}: checksum mismatch: the file is truncated or "
                               "corrupted")
        if reserved != 0:
            raise ProgramError(f"{source}: reserved preamble field is {reserved}, expected 0")
        head_end = _PREAMBLE.size + head_len
        if head_end > len(body):
            raise ProgramError(f"{source}: header length {head_len} runs past the end of file")
        try:
            header = json.loads(body[_PREAMBLE.size:head_end].decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProgramError(f"{source}: header is not valid JSON: {exc}") from None
        payload = body[head_end:]
        try:
            program = cls._from_header(header, payload, config=config, source=source)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ProgramError):
                raise
            raise ProgramError(f"{source}: malformed header: {exc!r}") from None
        if version < 2 and any(t.packing is not None for t in program.inputs):
            raise ProgramError(f"{source}: input packing needs format version 2, the file "
                               f"says {version}")
        return program

    @classmethod
    def _from_header(cls, header: dict[str, Any], payload: bytes, *,
                     config: AcceleratorConfig | None, source: str) -> Program:
        def section(entry: dict[str, Any], what: str) -> bytes:
            off, length = int(entry["offset"]), int(entry["length"])
            if off < 0 or length < 0 or off + length > len(payload):
                raise ProgramError(f"{source}: section {what} [{off}, {off + length}) lies "
                                   f"outside the {len(payload)}-byte payload")
            return payload[off:off + length]

        try:
            built_for = AcceleratorConfig.from_dict(header["config"], source=source)
        except ConfigError as exc:
            raise ProgramError(f"{source}: embedded config is invalid: {exc}") from None
        if built_for.fingerprint != header["config_fingerprint"]:
            raise ProgramError(f"{source}: embedded config does not match its fingerprint")
        if config is not None and config.fingerprint != built_for.fingerprint:
            diffs = [f"{k}={built_for.to_dict()[k]!r} (here {v!r})"
                     for k, v in config.to_dict().items() if built_for.to_dict()[k] != v]
            raise ProgramError(
                f"{source}: built for config {built_for.name!r}, cannot run on "
                f"{config.name!r}: differs in {', '.join(diffs)}")
        try:
            instructions = decode_program(section(header["instructions"], "instructions"))
        except IllegalInstruction as exc:
            raise ProgramError(f"{source}: {exc}") from None
        program = cls(
            config=built_for, instructions=instructions,
            segments=[Segment(str(s["name"]), int(s["address"]), section(s, s["name"]))
                      for s in header["segments"]],
            inputs=[TensorInfo.from_json(t) for t in header["inputs"]],
            outputs=[TensorInfo.from_json(t) for t in header["outputs"]],
            program_address=int(header["program_address"]),
            layers=list(header["layers"]), meta=dict(header["meta"]),
            attachments={str(name): section(entry, f"attachment {name!r}")
                         for name, entry in header.get("attachments", {}).items()})
        try:
            program.validate()
        except ValueError as exc:
            raise ProgramError(f"{source}: {exc}") from None
        return program

    @classmethod
    def load(cls, path: str | Path, *, config: AcceleratorConfig | None = None) -> Program:
        path = Path(path)
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise ProgramError(f"cannot read program {str(path)!r}: {exc.strerror}") from None
        return cls.from_bytes(blob, config=config, source=str(path))

    # ---- checks and helpers ----------------------------------------------------------------
    @property
    def program_bytes(self) -> int:
        return len(self.instructions) * INSTR_BYTES

    def validate(self) -> None:
        """Raise ProgramError unless every region fits the DRAM and none overlaps another."""
        size = self.config.dram_bytes
        if self.program_address % INSTR_BYTES:
            raise ProgramError(f"program_address {self.program_address} is not a multiple of "
                               f"{INSTR_BYTES}")
        regions = [("program", self.program_address, self.program_bytes)]
        regions += [(f"segment {s.name!r}", s.address, len(s.data)) for s in self.segments]
        for name, start, length in regions:
            if start < 0 or start + length > size:
                raise ProgramError(f"{name} [{start}, {start + length}) lies outside the "
                                   f"{size}-byte DRAM")
        ordered = sorted(regions, key=lambda r: r[1])
        for (n1, s1, l1), (n2, s2, _) in zip(ordered, ordered[1:]):
            if s1 + l1 > s2:
                raise ProgramError(f"{n1} [{s1}, {s1 + l1}) overlaps {n2} at {s2}")
        for t in self.inputs + self.outputs:
            if not 0 <= t.address < size:
                raise ProgramError(f"tensor {t.name!r} at {t.address} lies outside the DRAM")
        for t in self.outputs:
            if t.packing is not None:
                raise ProgramError(f"output {t.name!r} has a packing; only inputs are packed")
        for t in self.inputs:
            if t.packing is None:
                continue
            if t.channels:
                raise ProgramError(f"packed input {t.name!r} must have the identity channel "
                                   f"map, not {list(t.channels)}")
            if len(t.shape) != 4 or t.shape[0] != 1 or min(t.shape) < 1:
                raise ProgramError(f"packed input {t.name!r} must have a [1, C, H, W] shape, "
                                   f"not {list(t.shape)}")
            c, h, w = t.stored_shape
            lanes = self.config.lanes
            end = t.address + -(-c // lanes) * lanes * h * w
            if end > size:
                raise ProgramError(f"packed input {t.name!r} [{t.address}, {end}) lies "
                                   f"outside the {size}-byte DRAM")

    def dram_image(self) -> bytearray:
        """The initial DRAM: segments and the instruction words, zero elsewhere, sized to the
        highest byte used (simulators extend it to the configured DRAM size as they need)."""
        end = max([self.program_address + self.program_bytes] +
                  [s.address + len(s.data) for s in self.segments])
        image = bytearray(end)
        image[self.program_address:self.program_address + self.program_bytes] = \
            encode_program(self.instructions)
        for s in self.segments:
            image[s.address:s.address + len(s.data)] = s.data
        return image
