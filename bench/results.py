"""bench/results.json and bench/results.md: sections merged by name, each with its provenance.

results.json: {"format": 1, "sections": {NAME: RECORD}} where a RECORD holds the benchmark's
title, rows and notes, the git commit it ran on (and whether the tree had uncommitted changes),
the fields and fingerprints of the configurations its rows name, the date, its wall time and the
machine's load average when it started (the machine is shared: a loaded machine makes wall
times longer). Running some benchmarks replaces their sections and keeps the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hw.config import PRESETS
from systolica.provenance import provenance

from .registry import Section

__all__ = ["FORMAT", "provenance", "section_record", "merge", "load", "save",
           "render_markdown", "format_cell"]

FORMAT = 1


def _configs(rows: list[dict[str, Any]]) -> dict[str, Any]:
    names = sorted({row["config"] for row in rows if row.get("config") in PRESETS})
    return {name: {"fingerprint": PRESETS[name].fingerprint, "fields": PRESETS[name].to_dict()}
            for name in names}


def section_record(title: str, section: Section, *, seconds: float,
                   origin: dict[str, Any]) -> dict[str, Any]:
    """The JSON record of one benchmark's run (`origin` from `provenance()`)."""
    return {"title": title, **origin, "wall_seconds": round(seconds, 2),
            "configs": _configs(section.rows), "rows": section.rows, "notes": section.notes}


def merge(results: dict[str, Any], name: str, record: dict[str, Any]) -> dict[str, Any]:
    """A copy of `results` with section `name` replaced by `record` (appended when new)."""
    if results and results.get("format") != FORMAT:
        raise ValueError(f"results format must be {FORMAT}, not {results.get('format')!r}")
    sections = dict(results.get("sections", {}))
    sections[name] = record
    return {"format": FORMAT, "sections": sections}


def load(path: Path) -> dict[str, Any]:
    """The recorded results, or empty ones when the file does not exist yet."""
    if not path.exists():
        return {"format": FORMAT, "sections": {}}
    return json.loads(path.read_text())


def save(results: dict[str, Any], json_path: Path, markdown_path: Path) -> None:
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    markdown_path.write_text(render_markdown(results))


def format_cell(value: Any) -> str:
    """Integers with thousands separators, floats to a precision that suits their size, None
    as a dash (a figure not available: see the section's notes)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value).replace("|", "\\|")


def _table(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    lines = ["# Systolica benchmarks", "",
             "Written by `make bench` (bench/run.py); the same figures with every field are in "
             "bench/results.json.", ""]
    for name, record in results["sections"].items():
        dirty = " + uncommitted changes" if record.get("git_dirty") else ""
        configs = ", ".join(f"`{n}` ({c['fingerprint']})" for n, c in record["configs"].items())
        lines += [f"## {record['title']}", "",
                  f"`python -m bench.run --only {name}` — commit {record['git_commit'][:12]}"
                  f"{dirty}, {record['date']}, {record['wall_seconds']} s wall, load "
                  f"{record['load_average']} on {record['cpus']} cores"
                  + (f"; configs {configs}" if configs else "") + ".", ""]
        lines += _table(record["rows"]) if record["rows"] else ["(no rows)"]
        lines += [""] + [f"- {note}" for note in record["notes"]]
        lines += [""] if record["notes"] else []
    return "\n".join(lines).rstrip() + "\n"
