"""The README's accuracy figures, written from the tables of the notebooks' run, never typed.

``./run_all.sh`` (``mtcnn-lab workbench``) rewrites the block of the README between
:data:`BEGIN` and :data:`END` from ``results/tables`` after a full run; ``tests/test_readme_figures.py``
checks that the committed README says what the committed tables say. The tables read:

* ``05_per_face`` (notebook 05): every matched face of every FP32 backend against C++: the largest
  |dx|, |dy|, |dw|, |dh| in pixels and the largest confidence difference;
* ``05_summary``: faces and images per backend;
* ``02_reference_vs_cpp_layers`` (notebook 02): the numpy reference's layers against the C++ dumps;
* ``04_fp16_end_to_end`` (notebook 04): the FP16 policies against FP32: mean IoU and the largest px error.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mtcnn_lab.errors import MtcnnLabError
from mtcnn_lab.files import write_atomic

__all__ = ["BEGIN", "END", "FP32_BACKENDS", "accuracy_figures", "accuracy_section", "update_readme"]

BEGIN = "<!-- accuracy figures: written by ./run_all.sh from results/tables; do not edit by hand -->"
END = "<!-- end of accuracy figures -->"
FP32_BACKENDS = ("numpy", "torch", "onnx", "openvino")
"""The FP32 backends notebook 05 compares with C++ (named as in its tables)."""
FP16_VARIANTS = {"onnx-fp16": "ONNX Runtime", "numpy-fp16": "the numpy FP16 emulation",
                 "coreml": "the saved Core ML programs (run by Core ML, or off a Mac by the MIL executor)"}
"""The default FP16 policy (RNet/ONet FP16, PNet FP32) of each runtime in notebook 04, and how to name it (those
the run measured are listed)."""


class FiguresUnavailable(MtcnnLabError):
    """A table the README's figures come from is missing or lacks a row; rerun ./run_all.sh."""


def _rows(tables: Path, name: str) -> list[dict[str, str]]:
    path = Path(tables) / f"{name}.csv"
    if not path.is_file():
        raise FiguresUnavailable(f"{path} is missing: run ./run_all.sh (full run) to write the README's figures")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def accuracy_figures(tables: Path) -> dict:
    """The README's accuracy numbers from the notebooks' tables in ``tables`` (see the module docstring)."""
    faces = [r for r in _rows(tables, "05_per_face") if r["backend"] in FP32_BACKENDS and r["matched"] == "True"]
    summary = {r["backend"]: r for r in _rows(tables, "05_summary") if r["backend"] in FP32_BACKENDS}
    backends = [b for b in FP32_BACKENDS if b in summary]  # notebook 05 skips runtimes not installed
    fp16 = {r["variant"]: r for r in _rows(tables, "04_fp16_end_to_end") if r["variant"] in FP16_VARIANTS}
    missing = ([] if backends else ["an FP32 backend"]) + ([] if fp16 else ["an FP16 policy"])
    if missing or not faces:
        raise FiguresUnavailable(f"the tables in {tables} have no rows for {', '.join(missing) or 'matched faces'}; "
                                 "the README's figures were left as they were")
    layers = _rows(tables, "02_reference_vs_cpp_layers")
    return {
        "backends": backends,
        "images": max(int(summary[b]["images"]) for b in backends),
        "faces": max(int(summary[b]["faces_cpp"]) for b in backends),
        "same_counts": all(summary[b]["images_same_count"] == summary[b]["images"] for b in backends),
        "box_px": max(abs(float(r[k])) for r in faces for k in ("dx", "dy", "dw", "dh")),
        "confidence": max(abs(float(r["python_confidence"]) - float(r["cpp_confidence"])) for r in faces),
        "layer": max(float(r["max_abs"]) for r in layers),
        "layer_images": len({r["image"] for r in layers}),
        "fp16_images": max(int(r["images"]) for r in fp16.values()),
        "fp16": {v: {"iou_mean": float(fp16[v]["iou_mean"]), "max_px": float(fp16[v]["max_px_error"]),
                     "same_counts": fp16[v]["images_same_count"] == fp16[v]["images"]}
                 for v in FP16_VARIANTS if v in fp16},
    }


def _up(value: float) -> str:
    """A bound written with two significant digits, rounded up so the README never understates it (beyond
    the last bits of the tables' decimal text)."""
    mantissa, exponent = f"{value:.1e}".split("e")
    if float(f"{mantissa}e{exponent}") * (1 + 1e-9) < value:
        mantissa = f"{float(mantissa) + 0.1:.1f}"
        if mantissa == "10.0":
            mantissa, exponent = "1.0", str(int(exponent) + 1)
    return f"{mantissa}e{int(exponent)}"


def accuracy_section(figures: dict) -> str:
    """The README's bullet list (between :data:`BEGIN` and :data:`END`) for ``figures``."""
    counts = "the same number of faces" if figures["same_counts"] else "NOT the same number of faces"
    measured = [(name, figures["fp16"][v]) for v, name in FP16_VARIANTS.items() if v in figures["fp16"]]
    fp16 = [f"  * {name}: mean IoU {f['iou_mean']:.4f}, max {f['max_px']:.2f} px"
            + ("" if f["same_counts"] else " (face counts differ)") for name, f in measured]
    return "\n".join([
        f"* All {figures['images']} inputs of OpenFace's C++ reference (`../shared/reference/cpp_mtcnn_dev.json`),",
        f"  {figures['faces']} faces, for the FP32 backends measured ({', '.join(figures['backends'])}): {counts}, the",
        f"  same RNet candidates in the same order, the same ONet input boxes, final boxes within "
        f"{_up(figures['box_px'])} px,",
        f"  confidences within {_up(figures['confidence'])} (`tests/test_parity.py`, which allows 1e-3 px and 1e-6;",
        "  `results/tables/05_per_face.csv`).",
        "* The network inputs are OpenFace's bit for bit: pyramid levels and RNet/ONet crops equal the C++",
        "  dumps exactly (`tests/test_resize.py`; opencv-python's `cv2.resize` uses Intel IPP and differs in",
        "  the last bits, so `mtcnn_lab/cascade/resize.py` reimplements OpenCV's generic float path, compiled).",
        f"* Every layer of PNet/RNet/ONet against the C++ layer dumps of {figures['layer_images']} images: max abs "
        f"difference {_up(figures['layer'])}",
        "  (float32 summation order; `tests/test_reference.py` allows 2e-5); PReLU, max-pool and the FC flatten",
        "  order bit-exact (`results/tables/02_reference_vs_cpp_layers.csv`).",
        f"* FP16 (RNet/ONet FP16) against FP32 on {figures['fp16_images']} inputs (`tests/test_fp16.py`,",
        "  `results/tables/04_fp16_end_to_end.csv`):",
        *fp16,
    ])


def update_readme(readme: Path, tables: Path) -> bool:
    """Rewrite the block of ``readme`` between :data:`BEGIN` and :data:`END` from ``tables``; whether the
    file changed. FiguresUnavailable when the README has no such block."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise FiguresUnavailable(f"{readme} has no block between {BEGIN!r} and {END!r}")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    new = f"{head}{BEGIN}\n{accuracy_section(accuracy_figures(tables))}\n{END}{tail}"
    if new == text:
        return False
    write_atomic(readme, new.encode("utf-8"), overwrite=True)
    return True
