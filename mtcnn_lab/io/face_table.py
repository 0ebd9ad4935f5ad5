"""Per-frame face tables: one CSV row per face, as researchers open OpenFace's per-frame CSV files.

Columns (:data:`COLUMNS`): ``path``, ``frame`` (0-based decode index; empty for an image),
``timestamp_s`` (``frame / fps`` with the video's header frame rate, OpenFace's own time stamp for video
files; empty for an image or when the rate is unknown), ``face`` (0-based, in OpenFace's output order;
empty on the row of a frame without faces), ``confidence``, the box ``x, y, w, h`` in pixels (OpenFace's
final box, 0-based), the five landmarks ``lm1_x, lm1_y .. lm5_x, lm5_y`` in pixels (left eye, right eye,
nose, left and right mouth corner, as seen in the image) and ``error`` (the one-line reason an input
could not be read). A frame without faces keeps one row with an empty ``face``, so the table has every
frame that was detected. The rows are built from result entries (:mod:`mtcnn_lab.io.entries`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from mtcnn_lab.files import write_atomic

__all__ = ["COLUMNS", "face_rows", "face_csv", "write_face_csv", "is_face_table"]

COLUMNS = ["path", "frame", "timestamp_s", "face", "confidence", "x", "y", "w", "h",
           *[f"lm{i}_{axis}" for i in range(1, 6) for axis in ("x", "y")], "error"]
"""The table's columns, in order."""


def face_rows(entries: Iterable[dict], fps: Mapping[str, float | None] | None = None) -> list[dict]:
    """One row per face of each result entry (one row with an empty ``face`` for an entry without faces);
    ``fps`` maps a video's path to its frame rate for ``timestamp_s``."""
    rows = []
    for entry in entries:
        frame = entry.get("frame")
        rate = (fps or {}).get(entry["image"])
        base = {column: "" for column in COLUMNS}
        base.update(path=entry["image"], frame="" if frame is None else frame,
                    timestamp_s="" if frame is None or not rate else frame / rate, error=entry.get("error", ""))
        faces = entry.get("faces") or []
        if not faces:
            rows.append(base)
        for index, face in enumerate(faces):
            row = dict(base, face=index, confidence=face["confidence"])
            row.update(zip("xywh", face["bbox"], strict=True))
            for k, (x, y) in enumerate(face["landmarks"], start=1):
                row[f"lm{k}_x"], row[f"lm{k}_y"] = x, y
            rows.append(row)
    return rows


def face_csv(rows: Iterable[dict]) -> bytes:
    """The rows as CSV (header first; floats written by ``repr``, so they read back bit for bit)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode("utf-8", "surrogateescape")  # a name not valid UTF-8: its bytes, as on disk


def is_face_table(path: str | Path) -> bool:
    """Whether the file at ``path`` starts with this table's header line (so it is one of ours)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.readline().rstrip("\r\n") == ",".join(COLUMNS)
    except (OSError, UnicodeDecodeError):
        return False


def write_face_csv(entries: Iterable[dict], out: str | Path, fps: Mapping[str, float | None] | None = None,
                   overwrite: bool = False) -> Path:
    """Write the face table of ``entries`` to ``out`` atomically (``OutputExists`` unless ``overwrite``)."""
    return write_atomic(out, face_csv(face_rows(entries, fps)), overwrite)
