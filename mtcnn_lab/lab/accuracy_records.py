"""Accuracy figures per machine: what each CPU measured, and the bounds the README states for all of them.

Every full run of the workbench (``./run_all.sh``, ``mtcnn-lab workbench``) records, for the CPU it ran on,
the figures of :func:`accuracy_figures` in ``results/machines/accuracy.json`` (:data:`RECORDS`), one entry per
CPU (:func:`cpu_model`), replacing that CPU's earlier entry and keeping the other machines'. The README
states bounds, not one machine's last bits; :func:`broken_bounds` names those a machine's figures break,
and ``tests/test_readme_figures.py`` checks every recorded machine against the README's text. The tables read:

* ``05_per_face`` (notebook 05): every matched face of every FP32 backend against C++: the largest
  |dx|, |dy|, |dw|, |dh| in pixels and the largest confidence difference;
* ``05_summary``: faces and images per backend;
* ``02_reference_vs_cpp_layers`` (notebook 02): the numpy reference's layers against the C++ dumps;
* ``04_fp16_end_to_end`` (notebook 04): the FP16 policies against FP32: mean IoU and the largest px error.
"""

from __future__ import annotations

import csv
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from mtcnn_lab.errors import MtcnnLabError
from mtcnn_lab.files import write_atomic
from mtcnn_lab.lab.isa import cpu_flags, runnable_levels
from mtcnn_lab.version import __version__

__all__ = ["BOUNDS", "FP16_BOUNDS", "FP32_BACKENDS", "FP16_VARIANTS", "RECORDS", "FiguresUnavailable",
           "accuracy_figures", "broken_bounds", "cpu_model", "load_records", "merge_record", "record_accuracy"]

RECORDS = Path("machines") / "accuracy.json"
"""The per-machine records, relative to the results folder."""
SCHEMA = "mtcnn-lab/accuracy-machines/1"
FP32_BACKENDS = ("numpy", "torch", "onnx", "openvino")
"""The FP32 backends notebook 05 compares with C++ (named as in its tables)."""
FP16_VARIANTS = ("onnx-fp16", "numpy-fp16", "coreml")
"""The default FP16 policy (RNet/ONet FP16, PNet FP32) of each runtime in notebook 04 (those the run measured
are recorded)."""
BOUNDS = {"box_px": 1e-3, "confidence": 1e-6, "layer": 2e-5}
"""The largest FP32 differences from C++ the README allows (px, probability, layer activation): the tolerances
of ``tests/test_parity.py`` and ``tests/test_reference.py``."""
FP16_BOUNDS = {"iou_mean": 0.9997, "max_px": 1.0}
"""Each FP16 policy against FP32, as the README bounds it: the least mean IoU and the largest px error."""


class FiguresUnavailable(MtcnnLabError):
    """A table the accuracy figures come from is missing or lacks a row, or the records file is not ours."""


def _rows(tables: Path, name: str) -> list[dict[str, str]]:
    path = Path(tables) / f"{name}.csv"
    if not path.is_file():
        raise FiguresUnavailable(f"{path} is missing: run ./run_all.sh (a full run) to record the accuracy figures")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def accuracy_figures(tables: Path) -> dict:
    """The accuracy numbers from the notebooks' tables in ``tables`` (see the module docstring): the largest
    box difference ``box_px`` (px), ``confidence`` and ``layer`` differences, counts, and per FP16 policy its
    mean IoU and largest px error against FP32."""
    faces = [r for r in _rows(tables, "05_per_face") if r["backend"] in FP32_BACKENDS and r["matched"] == "True"]
    summary = {r["backend"]: r for r in _rows(tables, "05_summary") if r["backend"] in FP32_BACKENDS}
    backends = [b for b in FP32_BACKENDS if b in summary]  # notebook 05 skips runtimes not installed
    fp16 = {r["variant"]: r for r in _rows(tables, "04_fp16_end_to_end") if r["variant"] in FP16_VARIANTS}
    missing = ([] if backends else ["an FP32 backend"]) + ([] if fp16 else ["an FP16 policy"])
    if missing or not faces:
        raise FiguresUnavailable(f"the tables in {tables} have no rows for {', '.join(missing) or 'matched faces'}")
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


def broken_bounds(figures: dict) -> list[str]:
    """The README's bounds that ``figures`` (of :func:`accuracy_figures`) break, one line each; empty when
    all hold."""
    broken = [] if figures["same_counts"] else ["FP32: the same number of faces as C++ on every input"]
    names = {"box_px": "FP32: final boxes within {} px of C++", "confidence": "FP32: confidences within {} of C++",
             "layer": "every layer within {} of the C++ dumps"}
    broken += [f"{names[key].format(limit)} (measured {figures[key]:.3g})"
               for key, limit in BOUNDS.items() if figures[key] > limit]
    for variant, f in figures["fp16"].items():
        if not f["same_counts"]:
            broken.append(f"{variant}: the same number of faces as FP32 on every input")
        if f["iou_mean"] < FP16_BOUNDS["iou_mean"]:
            broken.append(f"{variant}: mean IoU at least {FP16_BOUNDS['iou_mean']} (measured {f['iou_mean']:.5f})")
        if f["max_px"] > FP16_BOUNDS["max_px"]:
            broken.append(f"{variant}: boxes within {FP16_BOUNDS['max_px']:g} px of FP32 (measured {f['max_px']:.3g})")
    return broken


def cpu_model(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU as the records name it: ``/proc/cpuinfo``'s model name, family and model, and the instruction-set
    levels it runs, e.g. ``"AMD EPYC (family 25, model 1; sse4.2 avx2)"``; off Linux the platform's processor."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    levels = " ".join(runnable_levels(cpu_flags(cpuinfo))) or "no SIMD level"
    return (f"{fields.get('model name') or platform.machine()} "
            f"(family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}; {levels})")


def load_records(path: Path) -> list[dict]:
    """The machines recorded in ``path`` (each: ``cpu``, ``date``, ``version``, ``figures``); empty when the
    file does not exist. FiguresUnavailable when it is not a records file."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FiguresUnavailable(f"{path} is not a records file ({err}); move it away") from None
    machines = data.get("machines") if isinstance(data, dict) and data.get("schema") == SCHEMA else None
    if not isinstance(machines, list) or not all(
            isinstance(m, dict) and isinstance(m.get("cpu"), str) and isinstance(m.get("figures"), dict)
            for m in machines):
        raise FiguresUnavailable(f"{path} is not a records file (schema {SCHEMA!r}, machines with cpu and figures); "
                                 "move it away")
    return machines


def merge_record(records: list[dict], entry: dict) -> list[dict]:
    """``records`` with ``entry`` in place of the entry of the same ``cpu`` (or added), sorted by CPU."""
    return sorted([r for r in records if r["cpu"] != entry["cpu"]] + [entry], key=lambda r: r["cpu"])


def record_accuracy(results: Path, cpu: str | None = None, date: str | None = None) -> dict:
    """Record the figures of ``results/tables`` for ``cpu`` (default: this one, :func:`cpu_model`) on ``date``
    (default: today, UTC, ``YYYY-MM-DD``) in ``results/``:data:`RECORDS`, keeping the other machines'; the
    entry written."""
    results = Path(results)
    entry = {"cpu": cpu or cpu_model(), "date": date or datetime.now(timezone.utc).strftime("%Y-%m-%d"),
             "version": __version__, "figures": accuracy_figures(results / "tables")}
    path = results / RECORDS
    machines = merge_record(load_records(path), entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"schema": SCHEMA, "machines": machines}, indent=1) + "\n"
    write_atomic(path, text.encode("utf-8"), overwrite=True)
    return entry
