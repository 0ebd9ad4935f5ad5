"""``mtcnn-lab bench``: time backends (and pymtcnn) on the same frames, write a JSON report (the lab)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtcnn_lab.cli.options import add_decode_arguments, check_output_file
from mtcnn_lab.errors import ParameterError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``bench`` and its options."""
    parser = sub.add_parser("bench", help="time backends (and pymtcnn) on the same frames; write a JSON report")
    parser.add_argument("paths", nargs="*", help="images/videos (default: the dev inputs of data/manifest.json)")
    parser.add_argument("--backend", action="append", default=None, metavar="B",
                        help="a backend to time, repeatable; the first is the ratios' baseline (default: the "
                             "CPU backend auto picks)")
    parser.add_argument("--pymtcnn", action="store_true",
                        help="also time pymtcnn 1.2.0's ONNX CPU backend (see benchmarks/README.md)")
    parser.add_argument("--pymtcnn-cache", default=None, help="pymtcnn's model cache root (default: the bench one)")
    add_decode_arguments(parser, hashes=False)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per frame and runner (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per frame and runner (default 1)")
    parser.add_argument("--limit", type=int, default=None, help="only this many frames")
    parser.add_argument("--out", default=None,
                        help="JSON report (default results/bench/backends.json, or backends_vs_pymtcnn.json "
                             "with --pymtcnn); replaced when it exists")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-frame progress")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Time backends (and pymtcnn with ``--pymtcnn``) on the same frames; write the JSON report."""
    from mtcnn_lab.lab.bench.report import bench_report, dev_frames, path_frames, write_report

    out = Path(args.out) if args.out else Path("results") / "bench" / (
        "backends_vs_pymtcnn.json" if args.pymtcnn else "backends.json")
    check_output_file(out, True, "--out", args.paths)  # the report is replaced: it is a measurement
    for name, value, least in (("--repeats", args.repeats, 1), ("--warmup", args.warmup, 0),
                               ("--limit", args.limit, 1)):
        if value is not None and value < least:
            raise ParameterError(f"{name} must be at least {least}, not {value}")
    if any(t < 1 for t in args.threads):
        raise ParameterError(f"--threads must be at least 1, not {min(args.threads)}")
    if args.paths:
        images, faces, entries = path_frames(args.paths, args.limit, args.decode)
    else:
        images, faces, entries = dev_frames(args.limit)
    progress = None if args.quiet else (lambda text: print(f"    {text}", file=sys.stderr))
    report = bench_report(images, faces, backends=args.backend, threads=args.threads, repeats=args.repeats,
                          warmup=args.warmup, pymtcnn=args.pymtcnn, pymtcnn_cache=args.pymtcnn_cache,
                          cpp_entries=entries, progress=progress)
    try:
        path = write_report(report, out)
    except OSError as err:
        raise ParameterError(f"cannot write {out} ({err.strerror or err}); choose an --out path "
                             "in a writable folder") from None
    print(f"wrote {path}")
    return 0
