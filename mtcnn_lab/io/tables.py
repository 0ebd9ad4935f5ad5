"""Writing result tables as JSON and CSV, deterministically (same rows, same bytes)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mtcnn_lab.files import write_atomic


def _plain(value: object) -> object:
    """numpy scalars and arrays to Python values; NaN/inf to None (JSON has no NaN)."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def save_table(rows: Sequence[dict], name: str, outdir: str | Path, meta: dict | None = None) -> dict[str, Path]:
    """Write ``rows`` (dicts with the same keys) to ``outdir/name.json`` and ``outdir/name.csv``.

    The JSON is ``{"meta": meta, "rows": rows}``; the CSV has one column per key of the first row
    (nested values as JSON text). Floats are written as Python prints them, so equal results give
    equal files. Returns ``{"json": path, "csv": path}``.
    """
    outdir = Path(outdir)
    plain = [_plain(dict(row)) for row in rows]
    columns = list(plain[0]) if plain else []
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in plain:
        writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})
    json_path = write_atomic(outdir / f"{name}.json",
                             (json.dumps({"meta": _plain(meta or {}), "rows": plain}, indent=1) + "\n").encode(),
                             overwrite=True)
    csv_path = write_atomic(outdir / f"{name}.csv", text.getvalue().encode("utf-8", "surrogateescape"),
                            overwrite=True)
    return {"json": json_path, "csv": csv_path}
