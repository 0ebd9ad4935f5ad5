"""The C++ reference a manifest points at: validated entry by entry, matched to the items by path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.manifests import resolve_path
from mtcnn_lab.lab.dataset.common import README_HINT, is_int, is_number, path_key, quoted, read_json


@dataclass
class Reference:
    """A checked reference JSON (``cpp_mtcnn_dev.json``'s schema): its ``meta``, the ``entries`` that have faces,
    the same ``index``ed by (resolved image path, frame or None), and how many error entries were ``skipped``."""

    path: Path
    meta: dict | None
    entries: list[dict]
    index: dict[tuple[str, int | None], dict]
    skipped: int


def _check_faces(faces: object, where: str) -> None:
    if not isinstance(faces, list):
        raise InputError(f"{where}: \"faces\" must be a list of faces; {README_HINT}")
    for face in faces:
        if not isinstance(face, dict) or not isinstance(face.get("bbox"), list) or len(face["bbox"]) != 4 \
                or not all(is_number(v) for v in face["bbox"]):
            raise InputError(f"{where}: every face needs \"bbox\": [x, y, w, h] (numbers); {README_HINT}")
        if "confidence" in face and not is_number(face["confidence"]):
            raise InputError(f"{where}: a face's \"confidence\" must be a number; {README_HINT}")
        landmarks = face.get("landmarks")
        if landmarks is not None and (not isinstance(landmarks, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(is_number(v) for v in p) for p in landmarks)):
            raise InputError(f"{where}: a face's \"landmarks\" must be a list of [x, y] points; {README_HINT}")


def load_reference(path: Path, root: Path, manifest_shown: str) -> Reference:
    """Read and check the reference JSON at ``path``; image paths are resolved against ``root``. A bad file is
    an InputError in one line naming the entry and the fix (``manifest_shown`` names the manifest to edit)."""
    data = read_json(path, "reference", f"fix \"reference\" in manifest {manifest_shown} or remove it "
                                         "(items then have no C++ faces)")
    shown = quoted(path)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise InputError(f"reference {shown} must be a JSON object with a \"results\" list (the schema of "
                         f"cpp_mtcnn_dev.json and mtcnn-lab detect --json); {README_HINT}")
    meta = data.get("meta")
    entries, index, skipped = [], {}, 0
    for n, entry in enumerate(data["results"]):
        where = f"reference {shown}, results[{n}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or not entry["image"]:
            raise InputError(f"{where}: each result needs an \"image\" path (relative to the root); {README_HINT}")
        frame = entry.get("frame")
        if frame is not None and (not is_int(frame) or frame < 0):
            raise InputError(f"{where} ({entry['image']}): \"frame\" must be a 0-based frame index or null")
        if "faces" not in entry:
            if "error" in entry:  # an input the run could not read (mtcnn-lab detect --json)
                skipped += 1
                continue
            raise InputError(f"{where} ({entry['image']}): no \"faces\" list; {README_HINT}")
        _check_faces(entry["faces"], f"{where} ({entry['image']})")
        for size in ("width", "height"):
            if entry.get(size) is not None and (not is_int(entry[size]) or entry[size] < 1):
                raise InputError(f"{where} ({entry['image']}): \"{size}\" must be a positive whole number")
        key = (path_key(resolve_path(entry["image"], root)), frame)
        if key in index:
            what = entry["image"] if frame is None else f"{entry['image']} frame {frame}"
            raise InputError(f"reference {shown} lists {what} twice; keep one entry per image or frame")
        index[key] = entry
        entries.append(entry)
    return Reference(path, meta if isinstance(meta, dict) else None, entries, index, skipped)
