"""The `systolica` console command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hw.config import PRESETS, AcceleratorConfig
from hw.isa import Buffer, End, Load
from hw.program import Program, Segment, TensorInfo
from systolica.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "systolica"


def systolica(*args: str) -> subprocess.CompletedProcess:
    # The installed console script when there is one, else the module (same entry point).
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "systolica.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def one_line_error(result: subprocess.CompletedProcess, command: str) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"systolica {command}: error: "), lines
    return lines[0]


def test_help_lists_every_command():
    result = systolica("--help")
    assert result.returncode == 0 and result.stderr == ""
    assert "usage: systolica" in result.stdout
    flowing = " ".join(result.stdout.split())   # argparse wraps long help texts
    for name, (help_text, _, _) in COMMANDS.items():
        assert name in result.stdout and " ".join(help_text.split()) in flowing
    assert {"config", "info"} <= set(COMMANDS)


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "systolica.cli", "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0 and "COMMAND" in result.stdout


def test_no_command_is_a_usage_error():
    result = systolica()
    assert result.returncode == 2 and "usage: systolica" in result.stderr


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_config_prints_toml_that_loads_back(name):
    result = systolica("config", "--config", name)
    assert result.returncode == 0, result.stderr
    assert AcceleratorConfig.from_toml(result.stdout) == PRESETS[name]


def test_config_from_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[accelerator]\nbase = "tiny"\ncontexts = 8\n')
    result = systolica("config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert AcceleratorConfig.from_toml(result.stdout).contexts == 8


def test_config_errors(tmp_path):
    line = one_line_error(systolica("config", "--config", "huge"), "config")
    assert "neither a preset" in line
    bad = tmp_path / "bad.toml"
    bad.write_text('[accelerator]\nrows = 6\n')
    assert "'rows'" in one_line_error(systolica("config", "--config", str(bad)), "config")


@pytest.fixture
def program_file(tmp_path) -> Path:
    program = Program(
        config=PRESETS["tiny"],
        instructions=[Load(buffer=Buffer.IBUF, dram_addr=4096, size0=16, count1=1, count2=1),
                      End()],
        segments=[Segment("input", 4096, bytes(64))],
        inputs=[TensorInfo(name="image", address=4096, shape=(1, 3, 4, 4), scale=0.5)],
        outputs=[TensorInfo(name="logits", address=8192, shape=(1, 10, 1, 1), scale=0.25)])
    path = tmp_path / "net.sysp"
    program.save(path)
    return path


def test_info(program_file):
    result = systolica("info", str(program_file))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "config 'tiny' (4x4" in out and PRESETS["tiny"].fingerprint in out
    assert "2 instructions" in out
    assert "segment input: 64 bytes at 0x1000" in out
    assert "input  image (1, 3, 4, 4)" in out and "output logits (1, 10, 1, 1)" in out


def test_info_on_corrupted_program(program_file):
    blob = bytearray(program_file.read_bytes())
    blob[len(blob) // 2] ^= 0x10
    program_file.write_bytes(bytes(blob))
    line = one_line_error(systolica("info", str(program_file)), "info")
    assert "checksum" in line and str(program_file) in line


def test_info_on_truncated_and_missing(program_file, tmp_path):
    program_file.write_bytes(program_file.read_bytes()[:20])
    assert "too short" in one_line_error(systolica("info", str(program_file)), "info")
    assert "cannot read" in one_line_error(systolica("info", str(tmp_path / "x.sysp")), "info")
