"""Each net's achieved GMAC/s and share of this machine's float32 GEMM peak, per ISA level and thread count.

Writes ``results/bench/efficiency.json`` (layout: ``benchmarks/README.md``). Each level runs in a new
process under that level's caps (:mod:`mtcnn_lab.lab.isa`), so an AVX-512 machine also reports AVX2::

    .venv/bin/python benchmarks/efficiency.py                      # 50 dev inputs, every level up to this CPU's
    .venv/bin/python benchmarks/efficiency.py --levels avx2 --limit 5 --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mtcnn_lab.lab.bench.report import dev_frames, write_report
from mtcnn_lab.lab.bench.system import machine_info
from mtcnn_lab.lab.efficiency import measure_efficiency
from mtcnn_lab.lab.isa import add_level_arguments, kernels_in_use, openblas_within, run_under_levels, runnable_levels

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "results" / "bench" / "efficiency.json"
SCHEMA = "mtcnn-lab/efficiency/1"


def measure_here(args: argparse.Namespace) -> dict:
    """This process's runs (it is already under its level's caps)."""
    images, _, _ = dev_frames(args.limit)
    kernels = kernels_in_use()
    numpy_ok = openblas_within(args.level, kernels["openblas"])
    return {"kernels": kernels, "numpy_within_cap": numpy_ok,
            "runs": [measure_efficiency(images, args.backend, threads, args.repeats, numpy_within_cap=numpy_ok)
                     for threads in args.threads]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_level_arguments(parser)
    parser.add_argument("--backend", default="auto", help="backend (default auto)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed detections per image (default 3)")
    parser.add_argument("--limit", type=int, default=None, help="only this many dev inputs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if args.level:
        json.dump(measure_here(args), sys.stdout)
        return 0

    levels = args.levels or runnable_levels()
    child = [sys.executable, str(Path(__file__).resolve()), "--this-process", "{level}", "--backend", args.backend,
             "--repeats", str(args.repeats), "--threads", *map(str, args.threads)]
    if args.limit is not None:
        child += ["--limit", str(args.limit)]
    levels = run_under_levels(child, args.levels or runnable_levels(), ROOT, lambda level: print(f"  {level}...",
                                                                                               file=sys.stderr))
    report = {"schema": SCHEMA, "machine": machine_info(), "levels": levels}
    print(f"wrote {write_report(report, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
