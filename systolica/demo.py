"""The end-to-end demo (`make demo`): a trained LeNet-5, compiled, run on the RTL, checked.

    python -m systolica.demo --model build/lenet5_mnist.onnx --dataset mnist --out build/demo/mnist

1. quantizes and compiles the ONNX model for the configuration (`default`), calibrating on a
   seeded draw of training images (200 by default);
2. measures the float accuracy (onnxruntime, one thread) and the int8 accuracy (the NumPy
   reference, `compiler/reference.py`) on the whole test split;
3. runs the test images (all, or the first `--rtl-images`) on the RTL (`verilator` by default),
   spread over `--jobs` worker processes, and compares every int8 output with the reference
   bit for bit: the first mismatching image stops the demo with exit code 1;
4. prints the accuracies, cycles per image, array utilization and images per second at the
   configuration's clock, writes OUT_report.json (the per-layer report of `systolica run` plus a
   "demo" section) and OUT_layers.png, and ends with their paths.

Exit codes: 0 all good, 1 an RTL output differs from the reference or int8 accuracy is more
than 1 percentage point from float accuracy, 2 bad arguments or inputs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.qgraph import QGraph
from hw.config import AcceleratorConfig, ConfigError, load_config
from hw.program import Program
from sim.dram_model import DramTiming

from . import report
from .pipeline import compile_onnx
from .runner import BACKENDS, ImageRun, NetworkRun, load_qgraph, run_network

__all__ = ["CALIBRATION_IMAGES", "CALIBRATION_SEED", "MAX_ACCURACY_DROP", "DemoError",
           "MismatchError", "calibration_set", "float_accuracy", "run_images",
           "first_mismatch", "check_bit_exact", "accuracy", "DemoResult", "run_demo", "main"]

CALIBRATION_IMAGES = 200
CALIBRATION_SEED = 7
#: The largest accepted |float - int8| accuracy difference (1 percentage point).
MAX_ACCURACY_DROP = 0.01


class DemoError(Exception):
    """A demo check failed (printed as one message, exit code 1)."""


class MismatchError(DemoError):
    """An RTL output differs from the NumPy reference."""


def calibration_set(train_x: np.ndarray, count: int = CALIBRATION_IMAGES, *,
                    seed: int = CALIBRATION_SEED) -> np.ndarray:
    """`count` training images drawn without replacement with a seeded generator."""
    if not 0 < count <= len(train_x):
        raise ValueError(f"calibration images must be in 1..{len(train_x)}, not {count!r}")
    pick = np.random.default_rng(seed).choice(len(train_x), count, replace=False)
    return train_x[np.sort(pick)]


def float_accuracy(model: str | os.PathLike, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the float ONNX model (one input) under onnxruntime (one thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    # A model exported with a fixed batch (an int first dimension) takes that many at a time.
    batch = model_input.shape[0] if isinstance(model_input.shape[0], int) else 500
    logits = np.concatenate([session.run(None, {model_input.name: x[i:i + batch]})[0]
                             for i in range(0, len(x), batch)])
    return accuracy(logits, y)


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of [N, classes, ...] scores against labels [N]."""
    return float((logits.reshape(len(y), -1).argmax(1) == y).mean())


def _run_chunk(program: Program, qgraph: QGraph, x: np.ndarray, backend: str,
               timing: DramTiming) -> tuple[list[ImageRun], dict, dict]:
    run = run_network(program, x, backend, timing=timing, progress=False, qgraph=qgraph)
    return run.images, run.outputs, run.int8


def run_images(program: Program, x: np.ndarray, backend: str, *, jobs: int = 1,
               timing: DramTiming = DramTiming(), qgraph: QGraph | None = None,
               progress: bool = False) -> NetworkRun:
    """`run_network` of `x` on `backend`, the images spread over `jobs` worker processes.

    With jobs > 1 the first image runs here first, so that the RTL model is built (and its
    Verilog generated, ~1 minute for `default`) once before the workers fork and inherit it;
    the other images go out in chunks and come back in order."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
    qgraph = load_qgraph(program) if qgraph is None else qgraph
    start = time.perf_counter()
    if jobs == 1 or len(x) < 2:
        run = run_network(program, x, backend, timing=timing, progress=progress, qgraph=qgraph)
        run.seconds = time.perf_counter() - start
        return run
    parts = [_run_chunk(program, qgraph, x[:1], backend, timing)]
    # Chunks of ~1/8 of each worker's share: the progress bar moves, the pickling stays small.
    size = max(1, -(-(len(x) - 1) // (8 * jobs)))
    bounds = [(i, min(i + size, len(x))) for i in range(1, len(x), size)]
    results: dict[int, tuple] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(x), initial=1, desc=backend, unit="image", leave=False)
    with ProcessPoolExecutor(max_workers=jobs,
                             mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {pool.submit(_run_chunk, program, qgraph, x[a:b], backend, timing): a
                   for a, b in bounds}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if bar is not None:
                bar.update(len(results[futures[future]][0]))
    if bar is not None:
        bar.close()
    parts += [results[a] for a, _ in bounds]
    images = [im for part in parts for im in part[0]]
    outputs = {n: np.concatenate([part[1][n] for part in parts]) for n in parts[0][1]}
    int8 = {n: np.concatenate([part[2][n] for part in parts]) for n in parts[0][2]}
    return NetworkRun(backend=backend, program=program, outputs=outputs, images=images,
                      timing=timing, seconds=time.perf_counter() - start, int8=int8)


def first_mismatch(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> int | None:
    """The index of the first image whose int8 outputs differ (any output), else None."""
    count = len(next(iter(got.values())))
    for i in range(count):
        if any(not np.array_equal(got[n][i], want[n][i]) for n in want):
            return i
    return None


def check_bit_exact(run: NetworkRun, want: dict[str, np.ndarray], *, what: str = "reference"
                    ) -> None:
    """Raise MismatchError naming the first image whose int8 outputs in `run` differ from
    `want` (int8 [N, C, H, W] by output name, N >= the run's images)."""
    n = len(run.images)
    head = {name: want[name][:n] for name in want}
    if set(run.int8) != set(head):
        raise MismatchError(f"{run.backend} produced outputs {sorted(run.int8)}, the {what} "
                            f"{sorted(head)}")
    i = first_mismatch(run.int8, head)
    if i is None:
        return
    parts = []
    for name in head:
        diff = np.flatnonzero(run.int8[name][i].ravel() != head[name][i].ravel())
        if len(diff):
            parts.append(f"output {name!r}: {len(diff)} of {run.int8[name][i].size} values "
                         f"differ, first at flat index {diff[0]} ({run.backend} "
                         f"{int(run.int8[name][i].ravel()[diff[0]])}, {what} "
                         f"{int(head[name][i].ravel()[diff[0]])})")
    raise MismatchError(f"test image {i}: the {run.backend} output differs from the {what}: "
                        + "; ".join(parts))


@dataclass
class DemoResult:
    """The figures the demo prints and records (accuracies in [0, 1])."""
    float_accuracy: float
    int8_accuracy: float
    rtl_accuracy: float
    int8_accuracy_rtl_images: float
    test_images: int
    rtl_images: int
    cycles_per_image: float
    utilization: float
    images_per_second: float
    clock_mhz: float
    run: NetworkRun

    def summary(self) -> dict:
        out = {k: v for k, v in vars(self).items() if k != "run"}
        out["bit_exact"] = True
        return out


def run_demo(*, model: str | os.PathLike, test_x: np.ndarray, test_y: np.ndarray,
             calibration: np.ndarray, config: AcceleratorConfig, backend: str = "verilator",
             rtl_images: int | None = None, jobs: int = 1, progress: bool = False,
             log: Callable[[str], None] = print) -> DemoResult:
    """Compile, measure float and int8 accuracy on all of `test_x`, run the first
    `rtl_images` (all when None) on `backend`, check them bit-exactly against the reference.
    Raises MismatchError on the first differing image."""
    if backend not in BACKENDS or backend == "reference":
        raise ValueError(f"backend must be one of {', '.join(BACKENDS[1:])}, not {backend!r}")
    n = len(test_x) if rtl_images is None else rtl_images
    if not 0 < n <= len(test_x):
        raise ValueError(f"rtl_images must be in 1..{len(test_x)}, not {rtl_images!r}")
    program = compile_onnx(model, config, calibration=calibration)
    qgraph = load_qgraph(program)
    log(f"compiled {model} for config {config.name!r} ({config.rows}x{config.columns}), "
        f"calibrated on {len(calibration)} training images")
    fa = float_accuracy(model, test_x, test_y)
    ref = run_network(program, test_x, "reference", progress=progress, qgraph=qgraph)
    name = program.meta["model"]["outputs"][0]["name"]
    ia = accuracy(ref.outputs[name], test_y)
    log(f"float accuracy {100 * fa:.2f}%, int8 accuracy (reference) {100 * ia:.2f}% on "
        f"{len(test_x)} test images")
    log(f"running {n} test images on the {backend} backend ({jobs} worker(s))")
    run = run_images(program, test_x[:n], backend, jobs=jobs, qgraph=qgraph, progress=progress)
    check_bit_exact(run, ref.int8)
    tot = report.totals(run, report.layer_rows(run))
    cycles = tot["cycles_per_image"]
    return DemoResult(
        float_accuracy=fa, int8_accuracy=ia,
        rtl_accuracy=accuracy(run.outputs[name], test_y[:n]),
        int8_accuracy_rtl_images=accuracy(ref.outputs[name][:n], test_y[:n]),
        test_images=len(test_x), rtl_images=n, cycles_per_image=cycles,
        utilization=tot["utilization"],
        images_per_second=config.clock_mhz * 1e6 / cycles if cycles else float("nan"),
        clock_mhz=config.clock_mhz, run=run)


def _print_result(res: DemoResult, backend: str) -> None:
    source = {"measured": "", "model": " (cycle model)"}.get(res.run.cycles_source,
                                                            " (compiler estimate)")
    subset = "" if res.rtl_images == res.test_images else \
        f" (the first {res.rtl_images} of {res.test_images} test images)"
    print(report.format_table(res.run))
    print()
    print(f"bit-exact: all {res.rtl_images} {backend} outputs equal the NumPy reference{subset}")
    print(f"float accuracy       {100 * res.float_accuracy:6.2f}%  ({res.test_images} images, "
          "onnxruntime)")
    print(f"int8 accuracy        {100 * res.int8_accuracy:6.2f}%  ({res.test_images} images, "
          "NumPy reference)")
    print(f"{backend} accuracy{' ' * max(1, 11 - len(backend))}{100 * res.rtl_accuracy:6.2f}%  "
          f"({res.rtl_images} images; reference on the same images "
          f"{100 * res.int8_accuracy_rtl_images:.2f}%)")
    print(f"cycles per image     {res.cycles_per_image:.0f}{source}")
    print(f"utilization          {100 * res.utilization:.1f}% of the array's peak MACs{source}")
    print(f"images per second    {res.images_per_second:.0f} at {res.clock_mhz:g} MHz{source}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m systolica.demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the trained float model (.onnx)")
    parser.add_argument("--dataset", required=True, choices=("mnist", "fashion"))
    parser.add_argument("--out", required=True, metavar="PREFIX",
                        help="writes PREFIX.sysp, PREFIX_report.json, PREFIX_layers.png")
    parser.add_argument("--config", default="default")
    parser.add_argument("--backend", default="verilator", choices=BACKENDS[1:])
    parser.add_argument("--rtl-images", type=int, default=None, metavar="N",
                        help="run only the first N test images on the backend (default all)")
    parser.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES,
                        metavar="N", help=f"seeded training images (default "
                                          f"{CALIBRATION_IMAGES})")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                        help="worker processes for the backend runs (default 2)")
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    from models.datasets import load_dataset

    try:
        config = load_config(args.config)
        data = load_dataset(args.dataset)
        if not Path(args.model).is_file():
            raise FileNotFoundError(f"{args.model} does not exist (make builds it: "
                                    f"make {args.model})")
        calibration = calibration_set(data.train_x, args.calibration_images)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"systolica.demo: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        res = run_demo(model=args.model, test_x=data.test_x, test_y=data.test_y,
                       calibration=calibration, config=config, backend=args.backend,
                       rtl_images=args.rtl_images, jobs=args.jobs, progress=True)
    except MismatchError as exc:
        print(f"systolica.demo: FAILED, not bit-exact: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"systolica.demo: {exc}", file=sys.stderr)
        return 2
    res.run.program.save(out.with_suffix(".sysp"))
    _print_result(res, args.backend)
    seconds = time.perf_counter() - wall
    summary = res.summary()
    summary.update(dataset=args.dataset, model=str(args.model), backend=args.backend,
                   calibration_images=len(calibration), calibration_seed=CALIBRATION_SEED,
                   wall_seconds=round(seconds, 1), jobs=args.jobs,
                   command=" ".join(["python -m systolica.demo", *(argv or sys.argv[1:])]))
    report_path = Path(f"{out}_report.json")
    plot_path = Path(f"{out}_layers.png")
    content = report.report_dict(res.run)
    content["demo"] = summary
    report_path.write_text(json.dumps(content, indent=2) + "\n")
    report.plot(res.run, plot_path)
    drop = res.float_accuracy - res.int8_accuracy
    print(f"demo wall time       {seconds:.0f} s")
    if abs(drop) > MAX_ACCURACY_DROP:
        print(f"systolica.demo: FAILED: int8 accuracy {100 * res.int8_accuracy:.2f}% is "
              f"{100 * abs(drop):.2f} points from float accuracy "
              f"{100 * res.float_accuracy:.2f}% (at most {100 * MAX_ACCURACY_DROP:g} accepted)",
              file=sys.stderr)
        return 1
    print(f"report: {report_path}")
    print(f"plot:   {plot_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
