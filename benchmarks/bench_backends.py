"""Time mtcnn-lab's CPU backend(s) and pymtcnn 1.2.0's ONNX backend on the same frames, in one run.

``mtcnn-lab bench --pymtcnn`` with the report written to ``results/bench/backends_vs_pymtcnn.json`` of
this repository (layout: ``benchmarks/README.md``); every other option is the command's own
(``mtcnn-lab bench --help``). Set up the environment first with ``benchmarks/setup_bench_env.sh``, then::

    .venv-bench/bin/python benchmarks/bench_backends.py                 # the 50 dev inputs, 1 and 2 threads
    .venv-bench/bin/python benchmarks/bench_backends.py --limit 3 --repeats 1    # smoke run

Without pymtcnn installed it says so in one line and times mtcnn-lab's backends only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mtcnn_lab.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "results" / "bench" / "backends_vs_pymtcnn.json"

if __name__ == "__main__":
    shared_models = ROOT.parent / "shared" / "OpenFaceModels"  # the shared folder beside this checkout
    if shared_models.is_dir():
        os.environ.setdefault("OPENFACE_MODELS_DIR", str(shared_models))
    args = sys.argv[1:]
    out = [] if "--out" in args else ["--out", str(DEFAULT_OUT)]
    sys.exit(main(["bench", "--pymtcnn", *out, *args]))
