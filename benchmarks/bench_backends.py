"""Time mtcnn-lab's CPU backend(s) and pymtcnn 1.2.0's ONNX backend on the same frames, in one run.

Writes ``results/bench/backends_vs_pymtcnn.json`` (layout: ``benchmarks/README.md``): per thread
count (default 1 and 2) and runner, per-frame median/p95, summed medians, FPS, per-stage times,
peak memory, thread settings, boxes vs C++ OpenFace, and the ratios ``<runner>/<baseline>``.
Set up the environment first with ``benchmarks/setup_bench_env.sh``, then::

    .venv-bench/bin/python benchmarks/bench_backends.py                 # the 50 dev inputs
    .venv-bench/bin/python benchmarks/bench_backends.py --limit 3 --repeats 1    # smoke run

Without pymtcnn installed it says so in one line and times mtcnn-lab's backends only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtcnn_lab.lab.bench.report import bench_report, dev_frames, path_frames, write_report

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "results" / "bench" / "backends_vs_pymtcnn.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="images/videos (default: the dev inputs of data/manifest.json)")
    parser.add_argument("--backend", action="append", dest="backends", metavar="B",
                        help="mtcnn-lab backend, repeatable; the first is the ratios' baseline "
                             "(default: the CPU backend auto picks)")
    parser.add_argument("--no-pymtcnn", dest="pymtcnn", action="store_false", help="time mtcnn-lab only")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per frame and runner (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per frame and runner (default 1)")
    parser.add_argument("--limit", type=int, default=None, help="only this many frames (spread over the groups)")
    parser.add_argument("--manifest", default=None, help="manifest JSON (default data/manifest.json)")
    parser.add_argument("--pymtcnn-cache", default=None,
                        help="pymtcnn's OpenFace model cache root (default: the one setup_bench_env.sh made)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file (default {DEFAULT_OUT})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-frame progress")
    args = parser.parse_args(argv)

    if args.paths:
        images, faces, entries = path_frames(args.paths, args.limit)
    else:
        images, faces, entries = dev_frames(args.limit, args.manifest)
    progress = None if args.quiet else (lambda text: print(f"    {text}", file=sys.stderr))
    report = bench_report(images, faces, backends=args.backends, threads=args.threads, repeats=args.repeats,
                          warmup=args.warmup, pymtcnn=args.pymtcnn, pymtcnn_cache=args.pymtcnn_cache,
                          cpp_entries=entries, progress=progress)
    print(f"wrote {write_report(report, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
