"""Decoding phone video: each profile's speed, its agreement with Debian's OpenCV 4.6, and what decoding
costs a whole detect_video run.

* Makes phone-like 1080x1920 clips from the OpenFace samples in ``../shared`` (never committed;
  :func:`mtcnn_lab.lab.bench_clips.phone_clips`): H.264 and HEVC tagged BT.709, H.264 stored 1920x1080
  with a -90 degree display matrix, HEVC 10-bit HLG (BT.2020).
* **Decode FPS** of every profile on every clip on one core (this process bound to CPU 0, one decoder
  and one OpenCV thread): frames decoded and converted to BGR per second, median of ``--rounds``.
* **Against Debian's OpenCV 4.6** (``/usr/bin/python3`` with python3-opencv, when installed): the share of
  frames whose pixels equal ``--decode opencv-4.6``'s (SHA-256), the pixel agreement (share equal, max and
  mean difference) and the detections on both decodes (face counts, IoU, max px).
* **End to end**: ``detect_video`` (``workers=1``, ``--threads`` threads) on the 1080x1920 portrait clip and
  a 640x480 clip (MPEG-4, as in video_throughput.py) with ``opencv-python`` (the reader before decode
  profiles) and ``opencv-4.6`` (the default now), rounds alternating.

Writes ``results/bench/decode.json``. Usage: ``python benchmarks/decode.py [--frames 60] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mtcnn_lab import MTCNN, __version__
from mtcnn_lab.io.decode.profiles import PROFILE_NAMES
from mtcnn_lab.io.decode.record import decode_record
from mtcnn_lab.io.images import pixels_sha256
from mtcnn_lab.io.videos import iter_video_frames
from mtcnn_lab.lab.agreement import agreement, summarise_agreement
from mtcnn_lab.lab.bench.system import machine_info
from mtcnn_lab.lab.bench.timing import pinned_threads
from mtcnn_lab.lab.bench_clips import phone_clips, portrait_clip, vga_clip
from mtcnn_lab.lab.debian_opencv import debian_decode, debian_opencv_version
from mtcnn_lab.video.stream import detect_video

ROOT = Path(__file__).resolve().parents[1]


def decode_fps(clip: Path, profile: str) -> float:
    """Frames per second of decoding ``clip`` to BGR with ``profile`` on one decoder thread."""
    start = time.perf_counter()
    n = sum(1 for _ in iter_video_frames(clip, decode=profile, decode_threads=1))
    return n / (time.perf_counter() - start)


def against_debian(detector: MTCNN, clip: Path, tmp: Path) -> dict:
    """``--decode opencv-4.6`` against Debian's OpenCV 4.6 on ``clip``: frames, pixels, detections."""
    theirs_file = tmp / f"{clip.stem}_debian.npy"
    theirs_info = debian_decode(clip, theirs_file)
    theirs = np.load(theirs_file)
    ours = [frame for _, frame in iter_video_frames(clip, decode="opencv-4.6")]
    same = sum(pixels_sha256(a) == h for a, h in zip(ours, theirs_info["hashes"], strict=False))
    diff = np.abs(np.stack(ours).astype(np.int16) - theirs) if len(ours) == len(theirs) else None
    rows = [agreement(str(k), detector.detect(a), detector.detect(b)) for k, (a, b) in enumerate(zip(ours, theirs,
                                                                                                       strict=False))]
    return {"debian_opencv": theirs_info["version"], "frames_ours": len(ours), "frames_debian": len(theirs),
            "frames_identical": same,
            "pixels_equal_share": None if diff is None else float((diff == 0).mean()),
            "pixels_max_diff": None if diff is None else int(diff.max()),
            "pixels_mean_diff": None if diff is None else float(diff.mean()),
            "detections": summarise_agreement(rows)}


def end_to_end(detector: MTCNN, clip: Path, decode: str) -> dict:
    """detect_video over ``clip`` (workers=1), decode included: frames per second and faces."""
    list(detect_video(detector, clip, every=10, progress=False, decode=decode))  # warm-up: this frame size
    start = time.perf_counter()
    entries = list(detect_video(detector, clip, progress=False, decode=decode))
    seconds = time.perf_counter() - start
    return {"frames": len(entries), "seconds": seconds, "fps": len(entries) / seconds,
            "faces": sum(len(e["faces"]) for e in entries)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="detector threads for the end-to-end runs (default 2)")
    parser.add_argument("--frames", type=int, default=60, help="frames per phone clip (default 60)")
    parser.add_argument("--e2e-frames", type=int, default=150, help="frames of the end-to-end clips (default 150)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "decode.json")
    args = parser.parse_args()
    samples = args.shared / "samples"
    detector = MTCNN(backend=args.backend, weights="zhang2016", threads=args.threads)
    report = {"version": __version__, "machine": machine_info(), "backend": detector.backend.name,
              "threads": args.threads, "targets": {"decode_fps_one_core": 60}, "clips": {}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clips = phone_clips(samples, tmp, args.frames)
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})  # one core for the decode timings
        previous = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            for name, clip in clips.items():
                fps = {p: [decode_fps(clip, p) for _ in range(args.rounds)] for p in PROFILE_NAMES}
                report["clips"][name] = {
                    "stream": decode_record(clip, "upright"),
                    "decode_fps_one_core": {p: {"runs": v, "median": float(np.median(v))} for p, v in fps.items()}}
                print(f"{name}: decode FPS on one core: "
                      + ", ".join(f"{p} {np.median(v):.0f}" for p, v in fps.items()))
        finally:
            os.sched_setaffinity(0, cpus)
            cv2.setNumThreads(previous)
        if debian_opencv_version():
            for name, clip in clips.items():
                row = report["clips"][name]["against_debian_opencv_4_6"] = against_debian(detector, clip, tmp)
                det = row["detections"]
                print(f"{name}: {row['frames_identical']}/{row['frames_debian']} frames identical to Debian's OpenCV "
                      f"{row['debian_opencv']}; pixels equal {row['pixels_equal_share']:.4f} (max diff "
                      f"{row['pixels_max_diff']}); detections: {det['images_same_count']}/{det['images']} frames "
                      f"same count, mean IoU {det['iou_mean']:.4f}, max {det['max_px_error']:.2f} px")
        else:
            report["against_debian_opencv_4_6"] = "not measured: Debian's python3-opencv is not installed"
        e2e_clips = {"portrait_1080x1920_mp4v": portrait_clip(samples, tmp / "portrait.mp4", args.e2e_frames),
                     "vga_640x480_mp4v": vga_clip(samples, tmp / "vga.mp4", args.e2e_frames),
                     "phone_h264_bt709": clips["h264_bt709"]}
        runs: dict[str, dict[str, list[dict]]] = {}
        with pinned_threads(args.threads):
            for round_ in range(args.rounds):
                for name, clip in e2e_clips.items():
                    order = ("opencv-python", "opencv-4.6") if round_ % 2 == 0 else ("opencv-4.6", "opencv-python")
                    for decode in order:
                        run = dict(end_to_end(detector, clip, decode), round=round_)
                        runs.setdefault(name, {}).setdefault(decode, []).append(run)
                        print(f"round {round_}: {name} --decode {decode}: {run['fps']:.1f} FPS end to end "
                              f"({run['frames']} frames, {run['faces']} faces)")
        report["end_to_end"] = {
            name: {decode: {"runs": r, "median_fps": float(np.median([x["fps"] for x in r]))}
                   for decode, r in by.items()} for name, by in runs.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
