"""Time the numpy reference cascade on the 50 dev inputs, with 1 and 2 threads, against C++.

Writes ``results/bench/reference_cpu.json``: per-image medians, their sums, and the ratio to
C++ OpenFace's own timings (``shared/reference/cpp_mtcnn_dev.json``, 1 thread, same kind of
machine). Usage: ``python benchmarks/reference_cpu.py [--repeats 5] [--shared ../shared]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from mtcnn_lab import MTCNN, __version__
from mtcnn_lab.io.images import read_image
from mtcnn_lab.lab.bench.system import machine_info
from mtcnn_lab.lab.bench.timing import pinned_threads, summarise, time_calls
from mtcnn_lab.lab.parity import load_cpp_reference

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "reference_cpu.json")
    args = parser.parse_args()

    cpp = load_cpp_reference(args.shared / "reference" / "cpp_mtcnn_dev.json")
    detector = MTCNN(backend="numpy", weights="openface", models_root=args.shared / "OpenFaceModels")
    images = {e["image"]: read_image(args.shared / "samples" / e["image"]) for e in cpp}
    report = {"version": __version__, "machine": machine_info(), "repeats": args.repeats,
              "backend": "numpy", "threads": {}}
    cpp_sum = sum(e["timing_ms"]["median_1thread"] for e in cpp)
    for threads in (1, 2):
        per_image = {}
        with pinned_threads(threads):
            for name, image in tqdm(images.items(), desc=f"{threads} thread(s)"):
                per_image[name] = summarise(time_calls(lambda image=image: detector.detect(image),
                                                       repeats=args.repeats))
        total = sum(v["median_ms"] for v in per_image.values())
        report["threads"][str(threads)] = {
            "sum_of_medians_ms": total, "cpp_sum_of_medians_1thread_ms": cpp_sum,
            "ratio_to_cpp": total / cpp_sum, "per_image": per_image}
        print(f"{threads} thread(s): {total:.0f} ms summed over {len(images)} inputs, "
              f"C++ {cpp_sum:.0f} ms (1 thread): ratio {total / cpp_sum:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
