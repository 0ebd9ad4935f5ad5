"""What a library user gets from a plain ``pip install``: the backend ``MTCNN()`` picks, and its speed.

Creates a fresh virtual environment, installs this checkout into it with no extras (``pip install .``),
asks ``mtcnn-lab backends`` there which backend ``auto`` is, and times, in that environment and in one
run, ``MTCNN()`` against ``MTCNN(backend="numpy")`` (OpenFace's speed) at 1 thread on OpenFace's sample
stills (``../shared/samples/sample*.jpg``): per image the median of ``--repeats`` detections, the two
detectors interleaved, summed over the images. Writes ``results/bench/default_install.json``.

    .venv/bin/python benchmarks/default_install.py [--repeats 7] [--keep VENV]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples"


def child(images: list[str], repeats: int) -> dict:
    """Run inside the fresh environment: the timing, as JSON-ready numbers."""
    import statistics

    import cv2

    from mtcnn_lab import MTCNN
    from mtcnn_lab.cli.options import limit_threads

    limit_threads(1)
    frames = [cv2.imread(path) for path in images]
    detectors = {"auto": MTCNN(threads=1), "numpy": MTCNN(backend="numpy", threads=1)}
    for detector in detectors.values():  # warm-up: compiled kernels, first-call allocations
        detector.detect(frames[0])
    seconds = {name: [[] for _ in frames] for name in detectors}
    faces = {name: [] for name in detectors}
    for _ in range(repeats):
        for i, frame in enumerate(frames):
            for name, detector in detectors.items():
                start = time.perf_counter()
                found = detector.detect(frame)
                seconds[name][i].append(time.perf_counter() - start)
                faces[name].append(len(found))
    summed = {name: sum(statistics.median(t) for t in per_image) for name, per_image in seconds.items()}
    return {"auto_backend": detectors["auto"].recipe()["backend"], "seconds_auto": summed["auto"],
            "seconds_numpy": summed["numpy"], "speedup": summed["numpy"] / summed["auto"],
            "same_faces": faces["auto"] == faces["numpy"], "images": [Path(p).name for p in images],
            "repeats": repeats}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="create the environment here and keep it (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "default_install.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeats)))
        return 0
    images = sorted(str(p) for p in SAMPLES.glob("sample*.jpg"))
    if not images:
        sys.exit(f"error: no sample stills in {SAMPLES}; the benchmark needs ../shared beside the checkout")
    with tempfile.TemporaryDirectory(prefix="mtcnn-lab-default-install-") as tmp:
        venv = args.keep or Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = venv / "bin" / "python"
        start = time.perf_counter()
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", str(ROOT)], check=True)
        install_s = time.perf_counter() - start
        packages = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], check=True, capture_output=True,
                                  text=True).stdout
        report = subprocess.run([str(venv / "bin" / "mtcnn-lab"), "backends"], check=True, capture_output=True,
                                text=True).stdout
        auto_line = next(line for line in report.splitlines() if line.rstrip().endswith("<- auto"))
        timing = subprocess.run([str(py), str(Path(__file__).resolve()), "--repeats", str(args.repeats),
                                 "--child", *images], check=True, capture_output=True, text=True, cwd=tmp)
        result = json.loads(timing.stdout.splitlines()[-1])
    result.update(install_seconds=round(install_s, 1), backends_auto_line=" ".join(auto_line.split()),
                  packages=sorted(p["name"] for p in json.loads(packages)), python=platform.python_version(),
                  cpu=platform.processor() or platform.machine(), threads=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"pip install . ({result['install_seconds']} s): auto = {result['auto_backend']}, "
          f"{result['speedup']:.2f}x numpy at 1 thread on {len(images)} stills ({result['seconds_auto'] * 1e3:.0f} vs "
          f"{result['seconds_numpy'] * 1e3:.0f} ms); `mtcnn-lab backends`: {result['backends_auto_line']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
