"""The whole MTCNN cascade on a CUDA GPU: parity with C++ on the 50 dev inputs, then throughput on batches of
1920x1080 and 1080x1920 frames (1, 8, 32, 64, 128 per call), end to end from uint8 frames in host memory to
Detections, with warm-up and peak GPU memory (:mod:`mtcnn_lab.lab.bench.gpu`). Writes
``results/bench/gpu.json``. Sized to finish well inside one 10-minute device call (3 s per batch size).

    python benchmarks/gpu.py [--shared ../shared] [--out results/bench/gpu.json]
    python benchmarks/gpu.py --backend torch-cascade --smoke --out /tmp/gpu.json   # CPU smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mtcnn_lab.errors import MtcnnLabError
from mtcnn_lab.files import write_json
from mtcnn_lab.lab.bench.gpu import BATCH_SIZES, gpu_report

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="torch-cascade-cuda")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared",
                        help="folder with reference/ and samples/ (default: ../shared)")
    parser.add_argument("--host-backend", default="torch", help="CPU backend giving the expected face counts")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per batch size")
    parser.add_argument("--smoke", action="store_true", help="2 dev inputs, 2 frames, batches 1 and 2, 0 s")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "gpu.json")
    args = parser.parse_args(argv)
    if not (args.shared / "reference" / "cpp_mtcnn_dev.json").is_file():
        print(f"error: no reference/cpp_mtcnn_dev.json under {args.shared}; pass --shared", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        report = gpu_report(args.backend, args.shared, args.host_backend,
                            batch_sizes=(1, 2) if args.smoke else BATCH_SIZES,
                            seconds=0.0 if args.smoke else args.seconds, limit=2 if args.smoke else None)
    except MtcnnLabError as err:  # no GPU here, a backend missing: one line, not a traceback
        print(f"error: {err} (on a machine without a GPU: --backend torch-cascade --smoke)", file=sys.stderr)
        return 2
    report["wall_seconds"] = time.perf_counter() - start
    write_json(args.out, report, overwrite=True)
    print(f"wrote {args.out} ({report['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
