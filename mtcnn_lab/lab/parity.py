"""Detection parity with C++ OpenFace: per image and per face against the C++ reference's final detections
of the 50 dev inputs (``cpp_mtcnn_dev.json``; ``data/README.md``), summaries per backend and group, and their tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtcnn_lab.cascade.boxes import iou
from mtcnn_lab.detections import Detections
from mtcnn_lab.lab.agreement import match_faces


@dataclass(frozen=True)
class ParityRow:
    """One input compared with C++: face counts and the largest differences over its faces."""

    image: str
    cpp_faces: int
    faces: int
    bbox: float
    bbox_pre_correction: float
    confidence: float
    landmarks: float
    min_iou: float

    @property
    def same_count(self) -> bool:
        """True when both found the same number of faces."""
        return self.cpp_faces == self.faces


def load_cpp_reference(path: str | Path) -> list[dict]:
    """The ``results`` list of the C++ reference JSON (``cpp_mtcnn_dev.json``), every entry as it is. A reference
    a user gives the workbench is read and checked by :func:`~mtcnn_lab.lab.dataset.reference.load_reference`."""
    return json.loads(Path(path).read_text())["results"]


def parity_row(detections: Detections, cpp: dict) -> ParityRow:
    """Compare one image's detections with its C++ entry, face by face in output order.

    Faces are paired by position in the output order, which OpenFace fixes (final NMS pick order);
    with different counts only the count is meaningful and the differences are ``inf``.
    """
    faces = cpp["faces"]
    if len(faces) != len(detections):
        inf = float("inf")
        return ParityRow(cpp["image"], len(faces), len(detections), inf, inf, inf, inf, 0.0)
    if not faces:
        return ParityRow(cpp["image"], 0, 0, 0.0, 0.0, 0.0, 0.0, 1.0)

    def worst(field: str, ours: np.ndarray) -> float:
        return float(np.abs(np.array([f[field] for f in faces], np.float64) - ours).max())

    cpp_boxes = np.array([f["bbox"] for f in faces])
    return ParityRow(
        cpp["image"], len(faces), len(detections),
        bbox=worst("bbox", detections.boxes),
        bbox_pre_correction=worst("bbox_pre_correction", detections.boxes_pre_correction),
        confidence=worst("confidence", detections.confidences),
        landmarks=worst("landmarks", detections.landmarks),
        min_iou=float(np.diag(iou(detections.boxes, cpp_boxes)).min()),
    )


DELTA_FIELDS = ("dx", "dy", "dw", "dh")
"""Box differences of :func:`box_deltas`: centre offset (dx, dy) and size difference (dw, dh), in px."""


def box_deltas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``(dx, dy, dw, dh)`` of boxes ``a`` minus boxes ``b`` (both ``x, y, w, h``), float64 (N, 4).

    ``dx, dy`` compare the box centres ``x + w/2, y + h/2``, ``dw, dh`` the sizes, so a box that
    grew symmetrically has ``dx = dy = 0`` and a shifted box ``dw = dh = 0``.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if a.shape != b.shape:
        raise ValueError(f"box_deltas needs as many boxes on both sides, got {len(a)} and {len(b)}")
    centre = (a[:, :2] + a[:, 2:] / 2) - (b[:, :2] + b[:, 2:] / 2)
    return np.concatenate([centre, a[:, 2:] - b[:, 2:]], axis=1)


def compare_with_cpp(image: str, detections: Detections, cpp_faces: list[dict] | None, *, backend: str = "",
                     group: str = "", min_iou: float = 0.3) -> dict:
    """One backend's detections on one image against the C++ faces, face by face.

    Faces are paired with :func:`match_faces` (greedy by IoU >= ``min_iou``). Returns a dict with
    ``backend``, ``group``, ``image``, the counts ``cpp_faces``, ``python_faces``, ``matched``,
    ``same_count``, ``agree`` (same count and every face matched) and ``faces``: one row per C++ face
    in reference order (with its Python partner or none), then the unmatched Python faces. A face row
    has ``cpp_face`` / ``python_face`` (indices or ``None``), ``matched``, ``iou``, ``one_minus_iou``,
    ``dx, dy, dw, dh`` (Python minus C++, px; :func:`box_deltas`), both confidences and both boxes.
    ``cpp_faces=None`` (no reference entry) counts as no C++ face.
    """
    cpp_faces = list(cpp_faces or [])
    cpp_boxes = np.array([f["bbox"] for f in cpp_faces], np.float64).reshape(-1, 4)
    py_boxes = np.asarray(detections.boxes, np.float64).reshape(-1, 4)
    pairs = {j: (i, v) for i, j, v in match_faces(py_boxes, cpp_boxes, min_iou)}
    base = {"backend": backend, "group": group, "image": image}
    faces = []
    for j, face in enumerate(cpp_faces):
        row = {**base, "cpp_face": j, "python_face": None, "matched": False, "iou": None, "one_minus_iou": None,
               **dict.fromkeys(DELTA_FIELDS), "cpp_confidence": face.get("confidence"), "python_confidence": None,
               "cpp_bbox": [float(v) for v in cpp_boxes[j]], "python_bbox": None}
        if j in pairs:
            i, value = pairs[j]
            deltas = box_deltas(py_boxes[i], cpp_boxes[j])[0]
            row.update(python_face=i, matched=True, iou=value, one_minus_iou=1.0 - value,
                       **{k: float(d) for k, d in zip(DELTA_FIELDS, deltas, strict=True)},
                       python_confidence=float(detections.confidences[i]),
                       python_bbox=[float(v) for v in py_boxes[i]])
        faces.append(row)
    partnered = {i for i, _ in pairs.values()}
    for i in range(len(py_boxes)):
        if i not in partnered:
            faces.append({**base, "cpp_face": None, "python_face": i, "matched": False, "iou": None,
                          "one_minus_iou": None, **dict.fromkeys(DELTA_FIELDS), "cpp_confidence": None,
                          "python_confidence": float(detections.confidences[i]), "cpp_bbox": None,
                          "python_bbox": [float(v) for v in py_boxes[i]]})
    same = len(cpp_faces) == len(py_boxes)
    return {**base, "cpp_faces": len(cpp_faces), "python_faces": len(py_boxes), "matched": len(pairs),
            "same_count": same, "agree": same and len(pairs) == len(cpp_faces), "faces": faces}


def per_face_rows(comparisons: list[dict]) -> list[dict]:
    """The face rows of :func:`compare_with_cpp` results, flattened in order (the per-face table)."""
    return [face for c in comparisons for face in c["faces"]]


def summarise_comparisons(comparisons: list[dict], by: tuple[str, ...] = ("backend",)) -> list[dict]:
    """Aggregate :func:`compare_with_cpp` results per value of the ``by`` keys (in order of first appearance).

    Each row: the ``by`` values, ``images``, ``images_same_count``, ``images_agree``, ``faces_cpp``,
    ``faces_python``, ``matched``, ``iou_mean``, ``iou_median``, ``iou_min``, ``share_iou_above_0.99``,
    ``one_minus_iou_mean``/``_max``, ``exact`` (matched faces with IoU exactly 1), and for each of
    ``dx, dy, dw, dh`` the mean and max of its absolute value (``dx_mean_abs``, ``dx_max_abs``, ...),
    ``centre_max_abs`` (largest |dx| or |dy|) and ``size_max_abs`` (largest |dw| or |dh|). Statistics
    over no matched face are ``None``.
    """
    groups: dict[tuple, list[dict]] = {}
    for c in comparisons:
        groups.setdefault(tuple(c[k] for k in by), []).append(c)
    rows = []
    for key, members in groups.items():
        matched = [f for c in members for f in c["faces"] if f["matched"]]
        ious = np.array([f["iou"] for f in matched], np.float64)
        deltas = np.abs(np.array([[f[k] for k in DELTA_FIELDS] for f in matched], np.float64).reshape(-1, 4))
        some = len(ious) > 0
        row = dict(zip(by, key, strict=True))
        row.update(
            images=len(members),
            images_same_count=sum(c["same_count"] for c in members),
            images_agree=sum(c["agree"] for c in members),
            faces_cpp=sum(c["cpp_faces"] for c in members),
            faces_python=sum(c["python_faces"] for c in members),
            matched=len(matched),
            iou_mean=float(ious.mean()) if some else None,
            iou_median=float(np.median(ious)) if some else None,
            iou_min=float(ious.min()) if some else None,
            **{"share_iou_above_0.99": float((ious > 0.99).mean()) if some else None},
            one_minus_iou_mean=float((1.0 - ious).mean()) if some else None,
            one_minus_iou_max=float((1.0 - ious).max()) if some else None,
            exact=int((ious == 1.0).sum()),
        )
        for k, name in enumerate(DELTA_FIELDS):
            row[f"{name}_mean_abs"] = float(deltas[:, k].mean()) if some else None
            row[f"{name}_max_abs"] = float(deltas[:, k].max()) if some else None
        row["centre_max_abs"] = float(deltas[:, :2].max()) if some else None
        row["size_max_abs"] = float(deltas[:, 2:].max()) if some else None
        rows.append(row)
    return rows


def pivot_summary(summary: list[dict], index: str = "group", columns: str = "backend",
                  values: tuple[str, ...] = ("iou_mean", "iou_min", "images_agree"),
                  keep: tuple[str, ...] = ("images", "faces_cpp")) -> list[dict]:
    """A paper-style wide table from :func:`summarise_comparisons` rows grouped by ``(index, columns)``.

    One row per ``index`` value (first-appearance order) with the ``keep`` fields of its first
    summary row, then ``"<column value> <value>"`` for every column value and every ``values`` field
    (``None`` where that combination is missing), e.g. ``{"group": "multi_face", "images": 3,
    "faces_cpp": 9, "numpy iou_mean": 1.0, "numpy iou_min": 1.0, "numpy images_agree": 3, ...}``.
    """
    col_values = list(dict.fromkeys(r[columns] for r in summary))
    cells = {(r[index], r[columns]): r for r in summary}
    rows = []
    for idx in dict.fromkeys(r[index] for r in summary):
        first = next(r for r in summary if r[index] == idx)
        row = {index: idx, **{k: first.get(k) for k in keep}}
        for col in col_values:
            cell = cells.get((idx, col))
            for value in values:
                row[f"{col} {value}"] = None if cell is None else cell.get(value)
        rows.append(row)
    return rows


def format_iou_cell(row: dict | None, digits: int = 6) -> str:
    """A table cell ``"mean / min (agree/images)"`` for a :func:`summarise_comparisons` row (``–`` if none)."""
    if row is None:
        return "–"
    agree = f"({row['images_agree']}/{row['images']})"
    if row["iou_mean"] is None:
        return f"no match {agree}"
    return f"{row['iou_mean']:.{digits}f} / {row['iou_min']:.{digits}f} {agree}"


def markdown_table(summary: list[dict], index: str = "group", columns: str = "backend",
                   cell: Callable[[dict], str] = format_iou_cell) -> str:
    """:func:`summarise_comparisons` rows as a Markdown table: rows ``index``, columns ``columns``, ``cell(row)``."""
    col_values = list(dict.fromkeys(r[columns] for r in summary))
    cells = {(r[index], r[columns]): r for r in summary}
    lines = ["| " + " | ".join([index, *col_values]) + " |", "|" + "---|" * (len(col_values) + 1)]
    for idx in dict.fromkeys(r[index] for r in summary):
        lines.append("| " + " | ".join([str(idx), *(cell(cells.get((idx, c))) for c in col_values)]) + " |")
    return "\n".join(lines)
