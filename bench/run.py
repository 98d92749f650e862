"""Run registered benchmarks and merge their sections into bench/results.{json,md}.

    python -m bench.run                    # every benchmark
    python -m bench.run --only NAME[,NAME] # some of them; the other sections stay as recorded
    python -m bench.run --list
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from . import suites
from .registry import BENCHMARKS
from .results import load, merge, provenance, save, section_record

__all__ = ["main", "discover"]

HERE = Path(__file__).resolve().parent


def discover() -> None:
    """Import every module of bench/suites/ so that its benchmarks register."""
    for module in pkgutil.iter_modules(suites.__path__):
        importlib.import_module(f"{suites.__name__}.{module.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--out", type=Path, default=HERE,
                        help="folder of results.json and results.md (default: bench/)")
    args = parser.parse_args(argv)
    discover()
    if args.list:
        for bench in BENCHMARKS.values():
            print(f"{bench.name:<20} {bench.title}")
        return 0
    names = list(BENCHMARKS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(BENCHMARKS)}")
    json_path, markdown_path = args.out / "results.json", args.out / "results.md"
    for name in names:
        bench = BENCHMARKS[name]
        print(f"bench: {name} ...", flush=True)
        origin = provenance()
        start = time.perf_counter()
        section = bench.function()
        seconds = time.perf_counter() - start
        # Merge into what is on disk now, so benchmarks run in parallel by hand both survive.
        results = merge(load(json_path), name, section_record(bench.title, section,
                                                               seconds=seconds, origin=origin))
        save(results, json_path, markdown_path)
        print(f"bench: {name} done in {seconds:.1f} s ({len(section.rows)} rows)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
