"""bench/results.py: sections merge by name, provenance is recorded, markdown renders."""

import json

import pytest

from bench.registry import BENCHMARKS, Section, benchmark
from bench.results import format_cell, load, merge, render_markdown, save, section_record

ORIGIN = {"git_commit": "0123456789abcdef", "git_dirty": True, "date": "2026-11-23 05:00 UTC",
          "cpus": 2, "load_average": 1.5, "python": "3.11.7"}


def record(title, rows, notes=()):
    return section_record(title, Section(rows=rows, notes=list(notes)), seconds=1.234,
                          origin=ORIGIN)


def test_merge_replaces_a_section_and_keeps_the_others_in_order():
    results = merge({}, "a", record("A", [{"x": 1}]))
    results = merge(results, "b", record("B", [{"y": 2}]))
    results = merge(results, "a", record("A2", [{"x": 3}]))
    assert list(results["sections"]) == ["a", "b"]
    assert results["sections"]["a"]["rows"] == [{"x": 3}]
    assert results["sections"]["b"]["title"] == "B"


def test_merge_refuses_another_format():
    with pytest.raises(ValueError, match="format must be 1"):
        merge({"format": 99, "sections": {}}, "a", record("A", []))


def test_record_carries_commit_and_the_configs_its_rows_name():
    rec = record("A", [{"config": "default", "cycles": 5}, {"config": "not-a-preset"}])
    assert rec["git_commit"] == ORIGIN["git_commit"] and rec["wall_seconds"] == 1.23
    assert list(rec["configs"]) == ["default"]
    assert rec["configs"]["default"]["fields"]["rows"] == 16


def test_save_and_load_round_trip(tmp_path):
    results = merge(load(tmp_path / "results.json"), "a",
                    record("Speed", [{"config": "default", "cycles": 1234567, "rate": 0.5}],
                           ["a note"]))
    save(results, tmp_path / "results.json", tmp_path / "results.md")
    assert load(tmp_path / "results.json") == json.loads(json.dumps(results))
    text = (tmp_path / "results.md").read_text()
    assert "## Speed" in text and "| 1,234,567 | 0.5 |" in text and "- a note" in text
    assert "commit 0123456789ab + uncommitted changes" in text


def test_markdown_table_takes_the_union_of_columns():
    text = render_markdown(merge({}, "a", record("A", [{"x": 1}, {"x": 2, "y": None}])))
    assert "| x | y |" in text and "| 1 | – |" in text and "| 2 | – |" in text


@pytest.mark.parametrize("value,text", [(None, "–"), (True, "yes"), (1234567, "1,234,567"),
                                        (523456.7, "523,457"), (97.156, "97.2"),
                                        (0.012345, "0.0123"), ("a|b", "a\\|b")])
def test_format_cell(value, text):
    assert format_cell(value) == text


def test_benchmark_names_are_checked_and_unique():
    with pytest.raises(ValueError, match="lower-case"):
        benchmark("Bad Name", "t")
    benchmark("test_only_registry_probe", "t")(lambda: Section(rows=[]))
    try:
        with pytest.raises(ValueError, match="registered twice"):
            benchmark("test_only_registry_probe", "t")(lambda: Section(rows=[]))
    finally:
        del BENCHMARKS["test_only_registry_probe"]
