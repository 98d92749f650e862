"""Per-layer figures of a network run: rows, the printed table, the JSON report, the plot.

Cycles are measured only by the RTL backends (amaranth, verilator: per-layer cycles from the
retirement trace, `systolica.runner.layer_cycles`, averaged over the images). For reference and
isa the rows carry the compiler's estimate with `"cycles_source": "estimate"`, and the table
marks every such figure "est.". Utilization = useful MACs / (cycles x rows x columns). DRAM
bytes per layer are what the layer's DMA instructions move (the compiler's count, the same on
every backend); the RTL backends add the DRAM model's measured total.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .runner import NetworkRun

__all__ = ["layer_rows", "totals", "format_table", "report_dict", "write_report", "plot"]


def _mean(values: list[int]) -> int | float:
    """The mean over the images: an int when it is one (cycles are the same for every image
    of a program, since nothing in the timing depends on the data)."""
    mean = sum(values) / len(values)
    return int(mean) if mean.is_integer() else mean


def layer_rows(run: NetworkRun) -> list[dict[str, Any]]:
    """One dict per layer: name, kind, macs, cycles, cycles_source, utilization, dram_bytes."""
    cfg = run.program.config
    pes = cfg.rows * cfg.columns
    rows = []
    for i, layer in enumerate(run.program.layers):
        if run.measured:
            cycles = _mean([im.layer_cycles[i] for im in run.images])
            source = run.cycles_source
        else:
            cycles, source = int(layer["cycles"]), "estimate"
        macs = int(layer["macs"])
        rows.append({"name": layer["name"], "kind": layer["kind"], "macs": macs,
                     "cycles": cycles, "cycles_source": source,
                     "utilization": macs / (cycles * pes) if cycles else None,
                     "dram_bytes": int(layer["dram_bytes"])})
    return rows


def totals(run: NetworkRun, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-image totals (means over the batch) and batch totals."""
    cfg = run.program.config
    macs = sum(r["macs"] for r in rows)
    n = len(run.images)
    if run.measured:
        cycles = _mean([im.rtl.cycles for im in run.images])
    else:
        cycles = sum(r["cycles"] for r in rows)
    out = {"images": n, "macs_per_image": macs,
           "cycles_per_image": cycles,
           "cycles_source": run.cycles_source,
           "utilization": macs / (cycles * cfg.rows * cfg.columns) if cycles else None,
           "dram_bytes_per_image": sum(r["dram_bytes"] for r in rows),
           "wall_seconds": run.seconds}
    if run.measured:
        out["cycles"] = sum(im.rtl.cycles for im in run.images)
        out["dram_read_bytes_measured"] = sum(im.rtl.dram_read_bytes for im in run.images)
        out["dram_write_bytes_measured"] = sum(im.rtl.dram_write_bytes for im in run.images)
    return out


def _cycles(value: float, source: str) -> str:
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return {"measured": text, "model": f"{text} model"}.get(source, f"{text} est.")


def _util(value: float | None, source: str) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" + {"measured": "", "model": " model"}.get(source, " est.")


def format_table(run: NetworkRun) -> str:
    """The per-layer table and totals printed by `systolica run`."""
    rows = layer_rows(run)
    tot = totals(run, rows)
    cfg = run.program.config
    head = f"{'layer':<24} {'kind':<7} {'MACs':>12} {'cycles':>14} {'util.':>12} " \
           f"{'DRAM bytes':>11}"
    lines = [f"backend {run.backend}, config {cfg.name!r} ({cfg.rows}x{cfg.columns}), "
             f"{tot['images']} image(s), per image:", head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name'][:24]:<24} {r['kind']:<7} {r['macs']:>12} "
                     f"{_cycles(r['cycles'], r['cycles_source']):>14} "
                     f"{_util(r['utilization'], r['cycles_source']):>12} "
                     f"{r['dram_bytes']:>11}")
    src = tot["cycles_source"]
    lines.append(f"{'total':<24} {'':<7} {tot['macs_per_image']:>12} "
                 f"{_cycles(tot['cycles_per_image'], src):>14} "
                 f"{_util(tot['utilization'], src):>12} {tot['dram_bytes_per_image']:>11}")
    if run.measured:
        c = run.images[0].rtl.counters
        where = "predicted by the cycle model" if run.backend == "perf" else "measured on the RTL"
        lines.append(f"{where} (first image): {c['cycles']} cycles, array busy "
                     f"{c['array_busy']}, waiting for loads {c['load_wait']}, for stores "
                     f"{c['store_wait']}, weight loading {c['weight_load']}, dependencies "
                     f"{c['dependency_wait']}; DRAM read "
                     f"{run.images[0].rtl.dram_read_bytes} and wrote "
                     f"{run.images[0].rtl.dram_write_bytes} bytes")
    else:
        lines.append(f"est. = the compiler's estimate: the {run.backend} backend does not "
                     "measure cycles (use --backend perf, amaranth or verilator)")
    lines.append(f"wall time {run.seconds:.2f} s")
    return "\n".join(lines)


def report_dict(run: NetworkRun) -> dict[str, Any]:
    """Everything `--report` writes (JSON-serialisable)."""
    rows = layer_rows(run)
    images = []
    for i, im in enumerate(run.images):
        entry: dict[str, Any] = {"index": i, "wall_seconds": im.seconds}
        if im.rtl is not None:
            entry.update(cycles=im.rtl.cycles, counters=dict(im.rtl.counters),
                         layer_cycles=list(im.layer_cycles),
                         dram_read_bytes=im.rtl.dram_read_bytes,
                         dram_write_bytes=im.rtl.dram_write_bytes)
        images.append(entry)
    t = run.timing
    return {
        "backend": run.backend,
        "config": run.program.config.to_dict(),
        "config_fingerprint": run.program.config.fingerprint,
        "network": run.program.meta.get("network"),
        "dram_timing": {"latency": t.latency, "bytes_per_cycle": t.bytes_per_cycle,
                        "max_outstanding": t.max_outstanding},
        "total": totals(run, rows),
        "images": images,
        "layers": rows,
    }


def write_report(run: NetworkRun, path: str | os.PathLike) -> None:
    with open(path, "w") as f:
        json.dump(report_dict(run), f, indent=2)
        f.write("\n")


def plot(run: NetworkRun, path: str | os.PathLike) -> None:
    """Per-layer cycles (bars) and utilization (line) as an image file (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = layer_rows(run)
    label = "measured" if run.measured else "compiler estimate"
    names = [r["name"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(rows) + 2), 4.5))
    ax.bar(range(len(rows)), [r["cycles"] for r in rows], color="tab:blue")
    ax.set_ylabel(f"cycles per image ({label})")
    ax.set_xticks(range(len(rows)), names, rotation=60, ha="right", fontsize=8)
    util = ax.twinx()
    util.plot(range(len(rows)), [100 * (r["utilization"] or 0) for r in rows], "o-",
              color="tab:orange")
    util.set_ylabel("array utilization (%)")
    util.set_ylim(0, 105)
    cfg = run.program.config
    ax.set_title(f"{run.program.meta.get('network', 'network')} on {cfg.name} "
                 f"({cfg.rows}x{cfg.columns}), backend {run.backend}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
