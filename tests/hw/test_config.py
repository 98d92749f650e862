"""AcceleratorConfig: validation of every field, presets and their derived figures, TOML."""

from __future__ import annotations

import dataclasses

import pytest

from hw.config import PRESETS, AcceleratorConfig, ConfigError, load_config, preset

INT_FIELDS = [f.name for f in dataclasses.fields(AcceleratorConfig)
              if f.name not in ("name", "clock_mhz")]


def rejects(field: str, **changes) -> ConfigError:
    """Build a default config with `changes`; it must fail naming `field`."""
    with pytest.raises(ConfigError) as info:
        AcceleratorConfig(**changes)
    assert repr(field) in str(info.value), str(info.value)
    return info.value


# ---- every field ---------------------------------------------------------------------------

@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("bad", ["16", 16.0, None, True, False, [16]])
def test_integer_fields_reject_non_integers(field, bad):
    err = rejects(field, **{field: bad})
    assert "integer" in str(err)


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("bad", [0, -1, -16])
def test_integer_fields_reject_zero_and_negative(field, bad):
    changes = {field: bad}
    if field == "columns":
        changes["rows"] = bad   # columns is checked after rows; make rows fail first
        field = "rows"
    rejects(field, **changes)


@pytest.mark.parametrize("field, bad", [
    ("rows", 6), ("rows", 12), ("rows", 1), ("rows", 128),
    ("ibuf_words", 3000), ("wbuf_words", 1000), ("pbuf_words", 48), ("acc_words", 1536),
    ("obuf_words", 4095), ("queue_depth", 6), ("axi_data_bits", 96), ("max_burst_beats", 12),
    ("dram_bytes", 3 << 20),
])
def test_power_of_two_fields(field, bad):
    rejects(field, **{field: bad})


@pytest.mark.parametrize("field, bad", [
    ("contexts", 128), ("operand_bits", 16), ("operand_bits", 4), ("acc_bits", 19),
    ("acc_bits", 33), ("ibuf_words", 1 << 17), ("obuf_words", 1 << 17),
    ("pbuf_words", 1), ("max_kernel", 16), ("max_stride", 8), ("queue_depth", 512),
    ("queue_depth", 1), ("token_depth", 256), ("axi_data_bits", 16), ("axi_data_bits", 2048),
    ("axi_addr_bits", 64), ("axi_id_bits", 17), ("max_burst_beats", 512),
    ("dram_bytes", 1 << 15), ("dram_bytes", 1 << 33),
])
def test_limits(field, bad):
    rejects(field, **{field: bad})


def test_columns_must_equal_rows():
    err = rejects("columns", rows=16, columns=8)
    assert "rows (16)" in str(err)
    AcceleratorConfig(rows=8, columns=8, wbuf_words=1024, axi_data_bits=64)


@pytest.mark.parametrize("field, changes", [
    # Two weight sets: 2 * contexts * columns = 2 * 16 * 16 = 512 words.
    ("wbuf_words", {"wbuf_words": 256}),
    ("wbuf_words", {"contexts": 64, "wbuf_words": 1024}),
    # The line buffer holds at least one kernel row and at most the input buffer.
    ("line_buffer_words", {"max_kernel": 11, "line_buffer_words": 8}),
    ("line_buffer_words", {"ibuf_words": 256, "line_buffer_words": 512}),
    # One buffer word must be a whole number of bus beats: 4 lanes = 32 bits < 64.
    ("axi_data_bits", {"rows": 4, "columns": 4, "wbuf_words": 512, "axi_data_bits": 64}),
])
def test_cross_field_rules(field, changes):
    rejects(field, **changes)


def test_cross_field_rules_accept_their_boundaries():
    AcceleratorConfig(wbuf_words=512)                       # exactly two weight sets
    AcceleratorConfig(max_kernel=11, line_buffer_words=11)
    AcceleratorConfig(ibuf_words=512, line_buffer_words=512)
    AcceleratorConfig(rows=4, columns=4, wbuf_words=512, axi_data_bits=32,
                      line_buffer_words=256)


@pytest.mark.parametrize("bad", ["", 5, None])
def test_name(bad):
    rejects("name", name=bad)


@pytest.mark.parametrize("bad", [0, -100.0, 2000.5, "100", True, None])
def test_clock(bad):
    rejects("clock_mhz", clock_mhz=bad)


def test_error_names_value_and_what_is_allowed():
    msg = str(rejects("rows", rows=6))
    assert "6" in msg and "power of two" in msg


def test_clock_is_stored_as_float():
    a, b = AcceleratorConfig(clock_mhz=125), AcceleratorConfig(clock_mhz=125.0)
    assert a == b and a.fingerprint == b.fingerprint
    assert isinstance(a.clock_mhz, float)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["tiny"].rows = 8


def test_replace_validates():
    assert PRESETS["default"].replace(contexts=8).contexts == 8
    with pytest.raises(ConfigError, match="'contexts'"):
        PRESETS["default"].replace(contexts=0)


# ---- presets and derived figures -----------------------------------------------------------

@pytest.mark.parametrize("name, rows, macs, acc_word, pbuf_word, lut_words, ibuf_bytes", [
    ("tiny", 4, 16, 16, 32, 64, 2048 * 4),
    ("default", 16, 256, 64, 128, 16, 4096 * 16),
    ("large", 32, 1024, 128, 256, 8, 8192 * 32),
])
def test_presets(name, rows, macs, acc_word, pbuf_word, lut_words, ibuf_bytes):
    c = preset(name)
    assert c.name == name and c.rows == c.columns == c.lanes == c.word_bytes == rows
    assert c.peak_macs_per_cycle == macs
    assert c.peak_gops == pytest.approx(2 * macs * c.clock_mhz / 1000)
    assert c.acc_word_bytes == acc_word and c.pbuf_word_bytes == pbuf_word
    assert c.lut_words == lut_words and c.lut_words * c.word_bytes == 256
    assert c.weight_set_words == c.contexts * c.columns
    assert c.wbuf_words >= 2 * c.weight_set_words
    assert c.axi_data_bytes * 8 == c.axi_data_bits
    sizes = c.buffer_bytes()
    assert sizes["ibuf"] == ibuf_bytes
    assert sizes["acc"] == c.acc_words * acc_word
    assert sizes["pbuf"] == c.pbuf_words * pbuf_word


def test_preset_fingerprints_differ():
    prints = {c.fingerprint for c in PRESETS.values()}
    assert len(prints) == len(PRESETS)
    assert all(len(p) == 16 for p in prints)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="tiny, default, large"):
        preset("huge")


# ---- TOML ----------------------------------------------------------------------------------

CUSTOM = AcceleratorConfig(name="mine", rows=8, columns=8, contexts=8, ibuf_words=1024,
                           wbuf_words=256, pbuf_words=8, acc_words=512, obuf_words=512,
                           max_kernel=7, max_stride=2, line_buffer_words=64, queue_depth=4,
                           token_depth=3, axi_data_bits=64, max_burst_beats=8,
                           dram_bytes=1 << 20, clock_mhz=62.5)


@pytest.mark.parametrize("config", [*PRESETS.values(), CUSTOM], ids=lambda c: c.name)
def test_toml_round_trip(config):
    text = config.to_toml()
    assert text.startswith("[accelerator]")
    back = AcceleratorConfig.from_toml(text)
    assert back == config and back.fingerprint == config.fingerprint


def test_toml_base_overrides():
    c = AcceleratorConfig.from_toml('[accelerator]\nbase = "tiny"\ncontexts = 8\n')
    assert c == PRESETS["tiny"].replace(name="tiny+custom", contexts=8)
    named = AcceleratorConfig.from_toml('[accelerator]\nbase = "tiny"\nname = "t8"\n')
    assert named.name == "t8" and named.rows == 4


def test_toml_base_errors():
    with pytest.raises(ConfigError, match="unknown config preset 'huge'"):
        AcceleratorConfig.from_toml('[accelerator]\nbase = "huge"\n')
    with pytest.raises(ConfigError, match="'base'"):
        AcceleratorConfig.from_toml('[accelerator]\nbase = ["tiny"]\n')
    # An override that breaks a rule is still validated.
    with pytest.raises(ConfigError, match="'rows'"):
        AcceleratorConfig.from_toml('[accelerator]\nbase = "tiny"\nrows = 5\n')


def test_toml_unknown_field():
    with pytest.raises(ConfigError, match="unknown config field.*'lanes'") as info:
        AcceleratorConfig.from_toml('[accelerator]\nlanes = 4\n', source="my.toml")
    assert str(info.value).startswith("my.toml:")


@pytest.mark.parametrize("text", ["[accelerator\nrows = 4", "rows = = 4", "[accelerator]\nrows"])
def test_invalid_toml(text):
    with pytest.raises(ConfigError, match="not valid TOML"):
        AcceleratorConfig.from_toml(text)


@pytest.mark.parametrize("text", ["", "rows = 4\n", "accelerator = 4\n"])
def test_toml_without_accelerator_table(text):
    with pytest.raises(ConfigError, match=r"\[accelerator\] table"):
        AcceleratorConfig.from_toml(text)


def test_toml_wrong_type():
    with pytest.raises(ConfigError, match="'rows' must be an integer"):
        AcceleratorConfig.from_toml('[accelerator]\nrows = "16"\n')


# ---- load_config ---------------------------------------------------------------------------

def test_load_config_preset_and_passthrough():
    assert load_config("tiny") is PRESETS["tiny"]
    assert load_config(CUSTOM) is CUSTOM


def test_load_config_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(CUSTOM.to_toml())
    assert load_config(str(path)) == CUSTOM
    bad = tmp_path / "bad.toml"
    bad.write_text('[accelerator]\nrows = 3\n')
    with pytest.raises(ConfigError, match="'rows'"):
        load_config(str(bad))


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.toml"))


def test_load_config_neither():
    with pytest.raises(ConfigError, match="neither a preset"):
        load_config("tiny.yaml")
