"""The one accelerator configuration every part of Systolica reads.

`AcceleratorConfig` is a frozen dataclass: it is validated when it is built (a bad field raises
`ConfigError` naming the field, the value and what is allowed), it derives every secondary
number (peak MACs per cycle, word widths, buffer bytes), and it round-trips through TOML.
Named presets cover the fast test machine (`tiny`), the reference design (`default`) and a
large array (`large`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tomli_w

__all__ = ["AcceleratorConfig", "ConfigError", "PRESETS", "preset", "load_config",
           "address_bits"]


class ConfigError(ValueError):
    """An invalid accelerator configuration: the message names the field and what is allowed."""


def address_bits(words: int) -> int:
    """Width of a word address into a memory of `words` words (the memory ports' addr)."""
    return (words - 1).bit_length()


def _is_pow2(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


# Limits that come from the instruction encoding (hw/isa.py): buffer addresses are 16-bit word
# addresses, kernel and pooling windows 4-bit, strides 3-bit, tile sides 10-bit.
_MAX_BUFFER_WORDS = 1 << 16
_MAX_KERNEL = 15
_MAX_STRIDE = 7
_MAX_TILE_SIDE = 1023


@dataclass(frozen=True)
class AcceleratorConfig:
    """Parameters of one generated accelerator.

    The array is `rows x columns` processing elements; `rows` is also the number of int8
    channels in one buffer word ("lanes") and the channel block of the DRAM layout
    (N, C/rows, H, W, rows). Each PE holds `contexts` weight contexts per bank (two banks: one
    computes while the other loads).
    """

    name: str = "custom"
    rows: int = 16
    columns: int = 16
    contexts: int = 16
    operand_bits: int = 8
    acc_bits: int = 32
    # On-chip buffer depths, in words (see the *_word_bytes properties for word widths).
    ibuf_words: int = 4096
    wbuf_words: int = 2048
    pbuf_words: int = 64
    acc_words: int = 2048
    obuf_words: int = 4096
    # Line buffer / window generator limits.
    max_kernel: int = 11
    max_stride: int = 4
    line_buffer_words: int = 512
    # Controller queues.
    queue_depth: int = 8
    token_depth: int = 8
    # Bus and memory system.
    axi_data_bits: int = 128
    axi_addr_bits: int = 32
    axi_id_bits: int = 4
    max_burst_beats: int = 16
    dram_bytes: int = 1 << 28
    # Reported figures (images per second) are stated at this clock.
    clock_mhz: float = 100.0

    def __post_init__(self) -> None:
        def need(cond: bool, field: str, allowed: str) -> None:
            if not cond:
                raise ConfigError(
                    f"config field {field!r} must be {allowed}, not {getattr(self, field)!r}"
                )

        def int_field(field: str) -> int:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"config field {field!r} must be an integer, not {value!r}")
            return value

        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"config field 'name' must be a non-empty string, not {self.name!r}")
        for f in fields(self):
            if f.name not in ("name", "clock_mhz"):
                int_field(f.name)
        need(2 <= self.rows <= 64 and _is_pow2(self.rows), "rows",
             "a power of two from 2 to 64")
        need(self.columns == self.rows, "columns",
             f"equal to rows ({self.rows}): the array is square so that one buffer word of "
             "output channels is one word of input channels for the next layer")
        need(1 <= self.contexts <= 127, "contexts", "an integer from 1 to 127")
        need(self.operand_bits == 8, "operand_bits", "8 (the datapath is int8)")
        need(20 <= self.acc_bits <= 32, "acc_bits", "an integer from 20 to 32")
        for buf in ("ibuf_words", "wbuf_words", "acc_words", "obuf_words", "pbuf_words"):
            need(_is_pow2(getattr(self, buf)) and getattr(self, buf) <= _MAX_BUFFER_WORDS, buf,
                 f"a power of two no larger than {_MAX_BUFFER_WORDS}")
        need(self.wbuf_words >= 2 * self.contexts * self.columns, "wbuf_words",
             f"at least two weight sets (2 * contexts * columns = "
             f"{2 * self.contexts * self.columns})")
        need(self.pbuf_words >= 2, "pbuf_words", "at least 2")
        need(1 <= self.max_kernel <= _MAX_KERNEL, "max_kernel", f"from 1 to {_MAX_KERNEL}")
        need(1 <= self.max_stride <= _MAX_STRIDE, "max_stride", f"from 1 to {_MAX_STRIDE}")
        need(self.max_kernel <= self.line_buffer_words <= self.ibuf_words, "line_buffer_words",
             f"at least max_kernel ({self.max_kernel}) and at most ibuf_words ({self.ibuf_words})")
        need(2 <= self.queue_depth <= 256 and _is_pow2(self.queue_depth), "queue_depth",
             "a power of two from 2 to 256")
        need(1 <= self.token_depth <= 255, "token_depth", "from 1 to 255")
        need(_is_pow2(self.axi_data_bits) and 32 <= self.axi_data_bits <= 1024, "axi_data_bits",
             "a power of two from 32 to 1024")
        # Every buffer word is then a whole number of bus beats, so the DMA never splits a beat.
        need(self.axi_data_bits <= 8 * self.word_bytes, "axi_data_bits",
             f"at most one buffer word ({8 * self.word_bytes} bits)")
        need(self.axi_addr_bits == 32, "axi_addr_bits", "32")
        need(1 <= self.axi_id_bits <= 16, "axi_id_bits", "from 1 to 16")
        need(_is_pow2(self.max_burst_beats) and self.max_burst_beats <= 256, "max_burst_beats",
             "a power of two from 1 to 256")
        need(_is_pow2(self.dram_bytes) and 1 << 16 <= self.dram_bytes <= 1 << self.axi_addr_bits,
             "dram_bytes", f"a power of two from 64 KiB to 2**{self.axi_addr_bits}")
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float)) \
                or not 0 < self.clock_mhz <= 2000:
            raise ConfigError(
                f"config field 'clock_mhz' must be a number in (0, 2000], not {self.clock_mhz!r}")
        # 125 and 125.0 are the same clock: store a float so equal configs share a fingerprint.
        object.__setattr__(self, "clock_mhz", float(self.clock_mhz))

    # ---- derived figures -------------------------------------------------------------------
    @property
    def lanes(self) -> int:
        """int8 channels in one input/weight/output buffer word (= rows)."""
        return self.rows

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.rows * self.columns

    @property
    def peak_gops(self) -> float:
        """Peak throughput in giga-operations per second (one MAC = 2 operations)."""
        return 2 * self.peak_macs_per_cycle * self.clock_mhz / 1000.0

    @property
    def word_bytes(self) -> int:
        """Bytes in one input, weight or output buffer word (one int8 per lane)."""
        return self.rows

    @property
    def acc_word_bytes(self) -> int:
        return self.columns * 4

    @property
    def pbuf_word_bytes(self) -> int:
        """One parameter word: per column a 32-bit bias, 16-bit multiplier, 8-bit shift, pad."""
        return self.columns * 8

    @property
    def lut_words(self) -> int:
        """Words of `word_bytes` that hold the 256-entry activation lookup table."""
        return max(1, 256 // self.word_bytes)

    @property
    def axi_data_bytes(self) -> int:
        return self.axi_data_bits // 8

    @property
    def weight_set_words(self) -> int:
        """Weight-buffer words of one full weight set (all contexts of all columns)."""
        return self.contexts * self.columns

    def buffer_bytes(self) -> dict[str, int]:
        return {
            "ibuf": self.ibuf_words * self.word_bytes,
            "wbuf": self.wbuf_words * self.word_bytes,
            "pbuf": self.pbuf_words * self.pbuf_word_bytes,
            "acc": self.acc_words * self.acc_word_bytes,
            "obuf": self.obuf_words * self.word_bytes,
        }

    # ---- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> AcceleratorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown config field(s) {', '.join(map(repr, unknown))}; "
                              f"known fields are {', '.join(sorted(known))}")
        return cls(**values)

    def to_toml(self) -> str:
        return tomli_w.dumps({"accelerator": self.to_dict()})

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<toml>") -> AcceleratorConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        table = data.get("accelerator")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: expected an [accelerator] table")
        values = dict(table)
        if "base" in values:  # start from a preset and override some fields
            base_name = values.pop("base")
            if not isinstance(base_name, str):
                raise ConfigError(f"{source}: 'base' must be a preset name "
                                  f"({', '.join(PRESETS)}), not {base_name!r}")
            base = preset(base_name)
            values = {**base.to_dict(), "name": f"{base.name}+custom", **values}
        return cls.from_dict(values, source=source)

    def replace(self, **changes: Any) -> AcceleratorConfig:
        return dataclasses.replace(self, **changes)

    @property
    def fingerprint(self) -> str:
        """A short stable hash of every field: program files and build caches key on it."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


PRESETS: dict[str, AcceleratorConfig] = {
    # 4x4 with small buffers: fast enough for Amaranth's Python simulator in unit tests.
    "tiny": AcceleratorConfig(
        name="tiny", rows=4, columns=4, contexts=16, ibuf_words=2048, wbuf_words=512,
        pbuf_words=16, acc_words=1024, obuf_words=1024, line_buffer_words=256,
        axi_data_bits=32, max_burst_beats=16, dram_bytes=1 << 22),
    # The reference design: 16x16, 64 KiB input and output buffers, 128-bit AXI.
    "default": AcceleratorConfig(name="default"),
    "large": AcceleratorConfig(
        name="large", rows=32, columns=32, contexts=16, ibuf_words=8192, wbuf_words=4096,
        pbuf_words=64, acc_words=4096, obuf_words=8192, line_buffer_words=1024,
        axi_data_bits=256),
    # Board presets (hw/boards/boards.py), each with a 64 KiB block-RAM DRAM stand-in beside
    # it; measured with `make synth BOARD=...` (docs/fpga.md has the numbers).
    # ULX3S, LFE5U-85F: 156 MULT18X18D, 208 DP16KD. 8x8 fits (126 DSPs, 163 DP16KD); 16x16
    # needs 256 array multipliers plus ~70 outside the array.
    "ulx3s-85f": AcceleratorConfig(
        name="ulx3s-85f", rows=8, columns=8, contexts=16, ibuf_words=4096, wbuf_words=2048,
        pbuf_words=64, acc_words=2048, obuf_words=4096, line_buffer_words=512,
        axi_data_bits=64, dram_bytes=1 << 16),
    # OrangeCrab, LFE5U-25F: 28 MULT18X18D, 56 DP16KD (32 of them hold the DRAM stand-in).
    # 4x4, the smallest array, with the array's, element-wise unit's and compute unit's
    # multipliers in LUTs (hw/boards/boards.py), 27 in DSPs;
    # acc_words 512 and line_buffer_words 128 bring the block RAMs to 55.
    "orangecrab-25f": AcceleratorConfig(
        name="orangecrab-25f", rows=4, columns=4, contexts=16, ibuf_words=2048,
        wbuf_words=512, pbuf_words=16, acc_words=512, obuf_words=1024,
        line_buffer_words=128, axi_data_bits=32, dram_bytes=1 << 16),
    # iCEBreaker, iCE40UP5K: 5280 logic cells, 8 DSPs, 30 EBR, 4 SPRAM; rows=4 is the smallest
    # array the config allows (axi_data_bits >= 32 must fit in one 4-byte buffer word). Does
    # not fit: synthesized for the UP5K it needs 25,525 LUTs, 56 DSPs and 169 EBR (docs/fpga.md).
    "icebreaker-up5k": AcceleratorConfig(
        name="icebreaker-up5k", rows=4, columns=4, contexts=4, ibuf_words=256, wbuf_words=64,
        pbuf_words=2, acc_words=256, obuf_words=256, max_kernel=3, max_stride=2,
        line_buffer_words=32, queue_depth=2, token_depth=2, axi_data_bits=32,
        max_burst_beats=8, dram_bytes=1 << 16, clock_mhz=24.0),
}


def preset(name: str) -> AcceleratorConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown config preset {name!r}; presets are {', '.join(PRESETS)}") from None


def load_config(spec: str | AcceleratorConfig) -> AcceleratorConfig:
    """A preset name, a path to a TOML file, or a config passed through."""
    if isinstance(spec, AcceleratorConfig):
        return spec
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if path.suffix == ".toml":
        if not path.is_file():
            raise ConfigError(f"config file {spec!r} does not exist")
        return AcceleratorConfig.from_toml(path.read_text(), source=str(path))
    raise ConfigError(f"config {spec!r} is neither a preset ({', '.join(PRESETS)}) "
                      "nor a .toml file")
