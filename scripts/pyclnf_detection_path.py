"""pyclnf 0.4.1's ``CLNF(detector="pymtcnn")`` detection path on mtcnn-lab's pymtcnn-compatible class.

Run in the bench environment (``benchmarks/setup_bench_env.sh`` installs pymtcnn 1.2.0 and pyclnf 0.4.1)::

    .venv-bench/bin/python scripts/pyclnf_detection_path.py

pyclnf's landmark models (CEN patch experts, PDM) come from OpenFace's repository and are not in the
OpenFace model cache of ``../shared``, and nothing can be downloaded here, so ``CLNF.__init__`` (which
loads them) cannot run. The script therefore builds the ``CLNF`` object without its ``__init__``, gives it
its detector exactly as that ``__init__`` does (``from pymtcnn import MTCNN; MTCNN()``) after
:func:`mtcnn_lab.compat.pymtcnn.install`, and runs pyclnf's own ``detect_and_fit`` on every dev input with
the fitting replaced by a recorder: what it records is the face box pyclnf's detection path hands to its
landmark fitting. The same is done with pymtcnn 1.2.0 itself. Both are compared with C++ OpenFace's
box of the face it keeps (the widest). Writes ``results/tables/pyclnf_detection_path.json|csv``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def handed_boxes(images: list[np.ndarray]) -> tuple[str, list[list[float] | None]]:
    """The detector pyclnf builds (its class's module) and, per image, the box its detection path passes to
    the landmark fitting (None when it finds no face)."""
    from pyclnf import CLNF

    clnf = CLNF.__new__(CLNF)  # no __init__: it would load pyclnf's landmark models, not available here
    clnf.detector_type, clnf._tracking_initialized, clnf._video_mode = "pymtcnn", False, False
    from pymtcnn import MTCNN  # as CLNF.__init__ does for detector="pymtcnn"

    clnf.detector = MTCNN()
    handed: list = []

    def record(image_gray, bbox, **kwargs):
        handed.append([float(v) for v in bbox])
        return np.zeros((68, 2)), {}

    clnf.fit_multi_hypothesis = clnf.fit = record
    boxes = []
    for image in images:
        handed.clear()
        try:
            clnf.detect_and_fit(image)
        except ValueError as err:  # pyclnf's "No faces detected in image"
            if "No faces detected" not in str(err):
                raise
        boxes.append(handed[0] if handed else None)
    return type(clnf.detector).__module__, boxes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "tables")
    args = parser.parse_args()
    try:
        import pyclnf  # noqa: F401
        import pymtcnn  # noqa: F401
    except ImportError as err:
        sys.exit(f"error: {err}; run in the bench environment (benchmarks/setup_bench_env.sh)")
    from mtcnn_lab.compat import pymtcnn as compat
    from mtcnn_lab.io.images import read_image
    from mtcnn_lab.io.tables import save_table
    from mtcnn_lab.lab.bench.pymtcnn import pymtcnn_cache_dir
    from mtcnn_lab.lab.parity import load_cpp_reference

    reference = load_cpp_reference(args.shared / "reference" / "cpp_mtcnn_dev.json")
    images = [read_image(args.shared / "samples" / e["image"]) for e in reference]
    expected = [e["faces"][e["single_face_index"]]["bbox"] if e["faces"] else None for e in reference]

    os.environ.setdefault("OPENFACE_MODELS_DIR", str(pymtcnn_cache_dir()))  # pymtcnn's converted models
    compat.install()
    try:
        ours_module, ours = handed_boxes(images)
    finally:
        compat.uninstall()
    theirs_module, theirs = handed_boxes(images)

    def off(box, cpp):
        if box is None or cpp is None:
            return None if box is None and cpp is None else float("inf")
        return float(np.abs(np.subtract(box, cpp)).max())

    rows = [{"image": e["image"], "cpp_box": cpp, "ours": a, "pymtcnn": b, "ours_px": off(a, cpp),
             "pymtcnn_px": off(b, cpp)} for e, cpp, a, b in zip(reference, expected, ours, theirs, strict=True)]
    worst = [r["ours_px"] for r in rows if r["ours_px"] is not None]
    meta = {"detector_module_with_switch": ours_module, "detector_module_without": theirs_module,
            "inputs": len(rows), "ours_max_px": max(worst), "ours_within_1e-3_px": sum(w <= 1e-3 for w in worst),
            "pymtcnn_off_by_more_than_1_px": sum((r["pymtcnn_px"] or 0) > 1 for r in rows),
            "note": "pyclnf's landmark models are not available offline: its fitting is replaced by a recorder"}
    save_table(rows, "pyclnf_detection_path", args.out, meta=meta)
    print(f"pyclnf's detector with the switch: {ours_module}; without: {theirs_module}")
    print(f"box handed to pyclnf's fitting vs C++ on {len(rows)} inputs: ours max {meta['ours_max_px']:.2g} px "
          f"({meta['ours_within_1e-3_px']} within 1e-3 px); pymtcnn off by > 1 px on "
          f"{meta['pymtcnn_off_by_more_than_1_px']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
