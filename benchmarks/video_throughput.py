"""End-to-end video throughput and large-frame latency, the speed issue's absolute targets.

* Builds test clips from the OpenFace samples in ``../shared`` (never committed): a 1080x1920
  portrait clip (faces of sample2/multi_face pasted on a portrait canvas, moving), a 640x480 clip
  (the first frames of ``multi_face.avi``) and a minute-long 640x480 clip (``multi_face.avi`` played
  in a loop; run with ``--workers`` only), all MPEG-4 (mp4v) in a temporary folder.
* Streams each with :func:`mtcnn_lab.video.stream.detect_video`, decode included, once with ``workers=1``
  (decode thread + detection in this process, ``--threads`` threads) and once with ``--workers``
  worker processes (1 thread each), and reports frames per second: ``fps`` over the whole call
  (worker start-up included) and ``steady_fps`` over the second half of the clip (after the
  workers' start-up and their first frames, which compile PNet for each pyramid level's size).
* Runs the 640x480 clip once more through a fresh ``mtcnn-lab detect --every 1 --workers N`` process
  and times it from the command to its JSON file (``vga_640x480_cli``): interpreter start, imports,
  backend choice and the workers' fork server included, which the in-process figures leave out
  (the fork server, once started, serves the later in-process runs).
* Times ``sample2.jpg`` (2048x1366) with ``--threads`` threads: median of the detect calls.
* Repeats all of it ``--rounds`` times (a shared VM's speed drifts over minutes) and keeps
  every run and the medians over the rounds.

Writes ``results/bench/video_throughput.json``. Usage: ``python benchmarks/video_throughput.py
[--backend auto] [--threads 2] [--workers 2] [--frames 600] [--long-frames 1800] [--rounds 3]
[--repeats 30]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mtcnn_lab import MTCNN, __version__
from mtcnn_lab.io.images import read_image
from mtcnn_lab.lab.bench.system import machine_info
from mtcnn_lab.lab.bench.timing import pinned_threads, summarise, time_calls
from mtcnn_lab.lab.bench_clips import portrait_clip, vga_clip
from mtcnn_lab.video.stream import detect_video

ROOT = Path(__file__).resolve().parents[1]


def stream_fps(detector: MTCNN, clip: Path, workers: int) -> dict:
    """Frames per second of detect_video over the whole clip on ``workers`` processes, decode included:
    ``fps`` over the call, ``steady_fps`` over the second half of the results; ``first_result_s``."""
    if workers == 1:
        list(detect_video(detector, clip, every=10, progress=False))  # warm-up: kernels for this frame size
    stamps, faces = [], []
    start = time.perf_counter()
    for entry in detect_video(detector, clip, progress=False, workers=workers):
        stamps.append(time.perf_counter())
        faces.append(len(entry["faces"]))
    seconds = time.perf_counter() - start
    half = len(stamps) // 2
    return {"workers": workers, "frames": len(stamps), "seconds": seconds, "fps": len(stamps) / seconds,
            "first_result_s": stamps[0] - start, "steady_fps": (len(stamps) - 1 - half) / (stamps[-1] - stamps[half]),
            "faces_per_frame": float(np.mean(faces))}


def cli_fps(clip: Path, workers: int, backend: str, out: Path) -> dict:
    """Frames per second of a fresh ``mtcnn-lab detect CLIP --every 1 --workers N --json OUT`` process:
    what a user waits for, Python's start, imports, weights, backend choice and worker start-up included."""
    command = [sys.executable, "-m", "mtcnn_lab.cli", "detect", str(clip), "--every", "1", "--workers", str(workers),
               "--backend", backend, "--weights", "zhang2016", "--json", str(out), "--force", "-q"]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    frames = len(json.loads(out.read_text())["results"])
    return {"workers": workers, "frames": frames, "seconds": seconds, "fps": frames / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="threads of the detector in this process (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes compared with 1 (default 2)")
    parser.add_argument("--frames", type=int, default=600, help="frames per clip (default 600: 20 s of video)")
    parser.add_argument("--long-frames", type=int, default=1800,
                        help="frames of the long 640x480 clip, run with --workers only (default 1800: a minute)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of the whole measurement (default 3)")
    parser.add_argument("--repeats", type=int, default=30, help="timed sample2.jpg calls per round (default 30)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "video_throughput.json")
    args = parser.parse_args()
    samples = args.shared / "samples"
    detector = MTCNN(backend=args.backend, weights="zhang2016", threads=args.threads)
    report = {"version": __version__, "machine": machine_info(), "backend": detector.backend.name,
              "threads": args.threads, "workers": args.workers,
              "targets": {"portrait_1080x1920_fps": 30, "vga_640x480_fps": 100, "sample2_median_ms": 40}}
    image = read_image(samples / "sample2.jpg")
    runs: dict[str, list[dict]] = {}
    sample2_ms: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, pinned_threads(args.threads):
        clips = {"portrait_1080x1920": portrait_clip(samples, Path(tmp) / "portrait.mp4", args.frames),
                 "vga_640x480": vga_clip(samples, Path(tmp) / "vga.mp4", args.frames),
                 "vga_640x480_long": vga_clip(samples, Path(tmp) / "vga_long.mp4", args.long_frames)}
        for round_ in range(args.rounds):  # rounds: a shared VM's speed drifts over minutes
            for name, clip in clips.items():
                for workers in sorted({1, args.workers}) if not name.endswith("_long") else [args.workers]:
                    run = dict(stream_fps(detector, clip, workers), round=round_)
                    runs.setdefault(f"{name}/{workers}", []).append(run)
                    print(f"round {round_}: {name}, {workers} worker(s): {run['steady_fps']:.1f} FPS steady, "
                          f"{run['fps']:.1f} FPS end to end with {run['first_result_s']:.1f} s to the first result "
                          f"({run['frames']} frames, {run['faces_per_frame']:.1f} faces per frame)")
            run = dict(cli_fps(clips["vga_640x480"], args.workers, args.backend, Path(tmp) / "cli.json"), round=round_)
            runs.setdefault("vga_640x480_cli", []).append(run)
            print(f"round {round_}: vga_640x480 through the CLI, {args.workers} workers: {run['fps']:.1f} FPS "
                  f"({run['seconds']:.1f} s from the command to its JSON file)")
            times = time_calls(lambda: detector.detect(image), repeats=args.repeats, warmup=3)
            sample2_ms += times
            print(f"round {round_}: sample2.jpg median {summarise(times)['median_ms']:.1f} ms")
    for key, entries in runs.items():
        if key == "vga_640x480_cli":
            report[key] = {"workers": args.workers, "runs": entries,
                           "median_fps": float(np.median([e["fps"] for e in entries]))}
            continue
        name, workers = key.split("/")
        report.setdefault(name, []).append({
            "workers": int(workers), "runs": entries,
            "median_fps": float(np.median([e["fps"] for e in entries])),
            "median_steady_fps": float(np.median([e["steady_fps"] for e in entries]))})
    report["sample2_2048x1366"] = summarise(sample2_ms)
    print(f"sample2.jpg: median {report['sample2_2048x1366']['median_ms']:.1f} ms over {len(sample2_ms)} calls")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
