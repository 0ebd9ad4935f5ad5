"""A user's own results for the frame viewer: the frames, and the faces of each run, paired by file and frame.

Faces come from ``mtcnn-lab detect --json`` or ``--csv`` files, or from a C++ reference JSON (the schema of
``cpp_mtcnn_dev.json``: ``results`` entries with ``image``, ``frame`` and ``faces``). Entries are paired with
frames by file name and 0-based frame index (decode order); a reference that names a video's frame as the
exported PNG ``<stem>_f<index>.png`` (``mtcnn-lab frames``, the manifest's convention) pairs with that frame too.
Frames come from a video (the frames the results cover, decoded with the profile the run recorded), a folder of
images (name order) or a list of image paths. Faces are dicts with ``bbox`` (x, y, w, h pixels), ``confidence``
and ``landmarks`` (5 x, y pixels).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.images import read_image
from mtcnn_lab.io.paths import IMAGE_SUFFIXES, PathLike, is_video, show_path
from mtcnn_lab.io.videos import iter_video_frames

__all__ = ["FaceFile", "Frame", "read_face_file", "read_frames"]

Key = tuple[str, "int | None"]
"""An entry's file name and 0-based frame index (None for a still image)."""


@dataclass
class FaceFile:
    """The faces of one run per ``(file name, frame)`` (error entries left out), the run's name (its backend,
    or the file's stem) and the decode profile it recorded per video file name."""

    path: Path
    name: str
    faces: dict[Key, list[dict]]
    decode: dict[str, str] | None = field(default_factory=dict)
    """Decode profile per video file name; None when the file does not record them (a CSV table)."""

    def lookup(self, name: str, frame: int | None) -> list[dict] | None:
        """The faces of file ``name`` (frame ``frame``), or None when the run has no entry for it."""
        if (name, frame) in self.faces:
            return self.faces[(name, frame)]
        if frame is not None:
            return self.faces.get((f"{Path(name).stem}_f{frame}.png", None))
        return None


@dataclass
class Frame:
    """One frame to show: its label (``name`` or ``video#index``), its key and its BGR uint8 pixels."""

    label: str
    key: Key
    image: np.ndarray


def _fail(path: Path, message: str) -> InputError:
    return InputError(f"{show_path(str(path))}: {message}")


def _add(faces: dict[Key, list[dict]], path: Path, image: object, frame: object, found: list[dict]) -> None:
    if not isinstance(image, str) or not image:
        raise _fail(path, "an entry has no \"image\" path; expected mtcnn-lab detect --json/--csv output or a C++ "
                          "reference JSON")
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 0):
        raise _fail(path, f"entry {image!r} has frame {frame!r}; frames are 0-based whole numbers")
    key = (Path(image).name, frame)
    if key in faces:
        what = key[0] if frame is None else f"{key[0]} frame {frame}"
        raise _fail(path, f"{what} appears twice (two files of that name?); give the viewer one run per file")
    faces.setdefault(key, []).extend(found)


def _face(bbox: Sequence[float], confidence: float | None, landmarks: Sequence[Sequence[float]] | None) -> dict:
    """A face dict; ValueError/TypeError for a box that is not 4 numbers or landmarks that are not 5 points."""
    box = [float(v) for v in bbox]
    points = None if landmarks is None else [[float(x), float(y)] for x, y in landmarks]
    if len(box) != 4 or (points is not None and len(points) != 5):
        raise ValueError("a face needs a bbox of 4 numbers and 5 landmark points")
    return {"bbox": box, "confidence": None if confidence is None else float(confidence), "landmarks": points}


def _read_json(path: Path) -> FaceFile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise _fail(path, f"not a JSON file ({type(err).__name__}); give mtcnn-lab detect --json output, its --csv "
                          "table or a C++ reference JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise _fail(path, "has no \"results\" list; give mtcnn-lab detect --json output or a C++ reference JSON")
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    faces: dict[Key, list[dict]] = {}
    for entry in data["results"]:
        if not isinstance(entry, dict):
            raise _fail(path, "a result is not a JSON object")
        if "faces" not in entry:
            continue  # an input the run could not read ("error")
        try:
            found = [_face(f["bbox"], f.get("confidence"), f.get("landmarks")) for f in entry["faces"]]
        except (KeyError, TypeError, ValueError):
            raise _fail(path, f"a face of {entry.get('image')!r} is not a numeric \"bbox\" [x, y, w, h] with five "
                              "[x, y] \"landmarks\"") from None
        _add(faces, path, entry.get("image"), entry.get("frame"), found)
    decoding = meta.get("decoding") if isinstance(meta.get("decoding"), dict) else {}
    decode = {Path(video).name: info["profile"] for video, info in decoding.items()
              if isinstance(info, dict) and isinstance(info.get("profile"), str)}
    name = meta.get("backend") if isinstance(meta.get("backend"), str) else path.stem
    return FaceFile(path, name, faces, decode)


def _read_csv(path: Path) -> FaceFile:
    faces: dict[Key, list[dict]] = {}
    origin: dict[Key, str] = {}  # the full path each key came from: two folders' files of one name must not merge
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except UnicodeDecodeError:
        raise _fail(path, "is not UTF-8 text; give the CSV that mtcnn-lab detect --csv wrote") from None
    needed = {"path", "frame", "face", "confidence", "x", "y", "w", "h"}
    if not rows or not needed <= set(rows[0]):
        raise _fail(path, f"is not a face table (columns {', '.join(sorted(needed))} ...); give the CSV that "
                          "mtcnn-lab detect --csv wrote")
    try:
        for row in rows:
            if row.get("error"):
                continue
            frame = int(row["frame"]) if row["frame"] != "" else None
            found = [] if row["face"] == "" else [_face(
                [float(row[c]) for c in "xywh"], float(row["confidence"]),
                [[float(row[f"lm{k}_x"]), float(row[f"lm{k}_y"])] for k in range(1, 6)]
                if all(row.get(f"lm{k}_x") not in (None, "") for k in range(1, 6)) else None)]
            key = (Path(row["path"]).name, frame)
            if origin.setdefault(key, row["path"]) != row["path"]:
                raise _fail(path, f"{row['path']!r} and {origin[key]!r} share a file name; give the viewer the "
                                  "results of one folder (detect --csv of that folder alone)")
            faces.setdefault(key, []).extend(found)
    except ValueError as err:
        raise _fail(path, f"a row has a value that is not a number ({err}); give the CSV mtcnn-lab detect wrote") \
            from None
    return FaceFile(path, path.stem, faces, decode=None)


def read_face_file(path: PathLike) -> FaceFile:
    """The faces of ``mtcnn-lab detect --json`` / ``--csv`` output or of a C++ reference JSON at ``path``;
    InputError in one line for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "not found; give the JSON or CSV that mtcnn-lab detect wrote, or a C++ reference JSON")
    return _read_csv(path) if path.suffix.lower() == ".csv" else _read_json(path)


def _images(paths: Sequence[Path], ours: FaceFile) -> list[Frame]:
    chosen = [p for p in paths if ours.lookup(p.name, None) is not None]
    if not chosen:
        raise InputError(f"none of the {len(paths)} images has a result in {show_path(str(ours.path))}; give the "
                         "images that run detected")
    return [Frame(p.name, (p.name, None), read_image(p)) for p in chosen]


def read_frames(source: PathLike | Sequence[PathLike], ours: FaceFile, decode: str | None = None) -> list[Frame]:
    """The frames that ``ours`` has results for: from a video (decoded with ``decode``, default the profile the
    run recorded), a folder of images (name order) or a list of image paths. InputError in one line when none has
    a result, or for a video whose profile is neither given nor recorded (a CSV table does not record it)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return _images(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), ours)
        if is_video(path):
            wanted = sorted(frame for name, frame in ours.faces if name == path.name and frame is not None)
            if not wanted:
                raise InputError(f"{show_path(str(ours.path))} has no frame of {show_path(str(path))}; give the "
                                 "video that run detected")
            if decode is None and ours.decode is None:
                raise InputError(f"{show_path(str(ours.path))} does not record how {show_path(str(path))} was "
                                 "decoded: pass decode='PROFILE' (the --decode of that run; default opencv-4.6) or "
                                 "give the run's --json file, which records it")
            profile = decode if decode is not None else ours.decode.get(path.name)
            return [Frame(f"{path.name}#{index}", (path.name, index), image) for index, image in
                    iter_video_frames(path, wanted, decode=profile)]
        return _images([path], ours)
    return _images([Path(p) for p in source], ours)
