"""Frames per second of 1080x1920 portrait frames through ``MTCNN.detect_batch``, one process, per ISA level.

The frames (``--frames``, default 40, of the portrait clip of :mod:`mtcnn_lab.lab.bench_clips`) are decoded
into memory first, so only detection is timed: one ``detect_batch`` call over all of them per round,
``--rounds`` rounds (default 5) after one untimed call, the machine's load average read before and after
each. Each ISA level runs in a new process under its caps (:mod:`mtcnn_lab.lab.isa`). Writes
``results/bench/portrait_batch.json``::

    .venv/bin/python benchmarks/portrait_batch.py                  # every level this CPU runs, 2 threads
    .venv/bin/python benchmarks/portrait_batch.py --levels avx2 --rounds 2 --frames 8   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from mtcnn_lab import MTCNN
from mtcnn_lab.io.videos import iter_video_frames
from mtcnn_lab.lab.bench.report import write_report
from mtcnn_lab.lab.bench.system import machine_info
from mtcnn_lab.lab.bench.timing import pinned_threads
from mtcnn_lab.lab.bench_clips import portrait_clip
from mtcnn_lab.lab.isa import add_level_arguments, kernels_in_use, run_under_levels, runnable_levels

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "results" / "bench" / "portrait_batch.json"
SCHEMA = "mtcnn-lab/portrait-batch/1"


def measure_here(args: argparse.Namespace) -> dict:
    """This process's rounds (it is already under its level's caps)."""
    with tempfile.TemporaryDirectory() as tmp:
        clip = portrait_clip(args.shared / "samples", Path(tmp) / "portrait.mp4", args.frames)
        frames = [frame for _, frame in iter_video_frames(clip, range(args.frames))]
    with MTCNN(backend=args.backend, weights="zhang2016", threads=args.threads) as detector, \
            pinned_threads(args.threads):
        detector.detect_batch(frames)  # untimed: compiles the fixed-shape models of these frames
        rounds = []
        for _ in range(args.rounds):
            load_before = os.getloadavg()[0]
            start = time.perf_counter()
            found = detector.detect_batch(frames)
            seconds = time.perf_counter() - start
            rounds.append({"seconds": seconds, "fps": len(frames) / seconds, "load_before": load_before,
                           "load_after": os.getloadavg()[0], "faces": sum(len(d) for d in found)})
        backend = detector.backend.name
    return {"kernels": kernels_in_use(), "backend": backend, "threads": args.threads, "frames": len(frames),
            "rounds": rounds, "min_fps": min(r["fps"] for r in rounds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_level_arguments(parser)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared/ folder")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="detector threads (default 2)")
    parser.add_argument("--frames", type=int, default=40, help="portrait frames (default 40)")
    parser.add_argument("--rounds", type=int, default=5, help="timed detect_batch calls (default 5)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if args.level:
        json.dump(measure_here(args), sys.stdout)
        return 0

    child = [sys.executable, str(Path(__file__).resolve()), "--this-process", "{level}", "--shared", str(args.shared),
             "--backend", args.backend, "--threads", str(args.threads), "--frames", str(args.frames),
             "--rounds", str(args.rounds)]
    levels = run_under_levels(child, args.levels or runnable_levels(), ROOT, lambda level: print(f"  {level}...",
                                                                                               file=sys.stderr))
    for level, result in levels.items():
        print(f"  {level}: " + ", ".join(f"{r['fps']:.1f}" for r in result["rounds"]) + " FPS", file=sys.stderr)
    report = {"schema": SCHEMA, "machine": machine_info(), "levels": levels}
    print(f"wrote {write_report(report, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
