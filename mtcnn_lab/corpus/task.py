"""One corpus item on a Dask worker: detect faces in a video or a folder of images and write its result
file and face table, resumable through a hidden per-frame file (:mod:`mtcnn_lab.corpus`)."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

from mtcnn_lab.corpus.items import csv_name, output_name
from mtcnn_lab.errors import InputError, MtcnnLabError
from mtcnn_lab.files import write_json
from mtcnn_lab.io.face_table import write_face_csv
from mtcnn_lab.io.paths import IMAGE_SUFFIXES, PathLike

log = logging.getLogger(__name__)

__all__ = ["process_video", "is_complete"]

_DETECTORS: dict[tuple, object] = {}  # one detector per (backend, weights, threads) per worker process


def _detector(backend: str, weights: str, threads: int):
    """This process's detector for these settings (built once per worker process)."""
    key = (backend, weights, threads)
    if key not in _DETECTORS:
        import cv2
        from threadpoolctl import threadpool_limits

        from mtcnn_lab.detector import MTCNN

        threadpool_limits(threads)
        cv2.setNumThreads(threads)
        _DETECTORS[key] = MTCNN(backend=backend, weights=weights, threads=threads)
    return _DETECTORS[key]


def _image_entries(detector, folder: Path, jsonl: Path):
    """Entries for the still images of a folder (sorted by name), resumable through ``jsonl``."""
    from mtcnn_lab.io.entries import error_entry, result_entry, resume_jsonl
    from mtcnn_lab.io.images import read_image
    from mtcnn_lab.video.stream import run_settings

    done = resume_jsonl(jsonl, run_settings(detector, folder, None))
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    with jsonl.open("a") as handle:
        for index, path in enumerate(images):
            entry = done.get(index)
            if entry is None:
                try:
                    image = read_image(path)
                except InputError as err:
                    entry = error_entry(str(path), index, str(err))
                else:
                    entry = result_entry(str(path), index, image, detector.detect(image))
                handle.write(json.dumps(entry) + "\n")
                handle.flush()
            yield entry


def process_video(path: PathLike, out_dir: PathLike, backend: str = "auto", weights: str = "auto",
                  every: int = 1, threads: int = 1, name: str | None = None,
                  crash_after_frames: int | None = None, decode: str | None = None) -> dict:
    """Detect faces in one corpus item (a video, or a folder of images) and write its result file.

    Writes ``out_dir/name`` (default :func:`output_name` of ``path``) atomically in the
    ``detect --json`` schema; per-frame results go to ``out_dir/.<name>.<profile>.frames.jsonl`` (and its settings
    file, :func:`~mtcnn_lab.io.entries.settings_file`) as they are
    computed (a rerun resumes from it) and that file is removed once the result file is written.
    Returns a summary row: ``item``, ``output``, ``status`` (``ok``/``error``), ``frames``,
    ``faces``, ``errors`` (unreadable images of a folder), ``resumed`` (frames taken from the partial
    file of an earlier attempt), ``seconds``, ``worker``, ``error``.
    An unusable input (:class:`MtcnnLabError`) gives an ``error`` row, writes no result file, and
    does not raise. ``crash_after_frames``: fault injection, see the package docstring (:mod:`mtcnn_lab.corpus`).
    ``decode``: the decode profile of a video (None: the default).
    """
    from mtcnn_lab.io.decode.profiles import get_profile
    from mtcnn_lab.io.decode.record import decode_record
    from mtcnn_lab.io.entries import discard_stale, remove_jsonl, result_meta
    from mtcnn_lab.video.stream import detect_video, run_settings

    start = time.perf_counter()
    path, out_dir = Path(path), Path(out_dir)
    name = name or output_name(path)
    row = {"item": str(path), "output": name, "status": "ok", "frames": 0, "faces": 0, "errors": 0,
           "resumed": 0, "seconds": 0.0, "worker": f"{socket.gethostname()}:{os.getpid()}", "error": ""}
    out_dir.mkdir(parents=True, exist_ok=True)
    decode = get_profile(decode).name
    jsonl = out_dir / f".{name}.{decode}.frames.jsonl"
    marker = out_dir / f".{name}.crashed"
    # a finished task rerun by Dask (its worker died after it ended)
    if is_complete(out_dir / name, every, decode, backend, weights):
        done = json.loads((out_dir / name).read_text())
        results = done["results"]
        if not (out_dir / csv_name(name)).exists():  # a result file written before the corpus wrote face tables
            write_face_csv(results, out_dir / csv_name(name), {str(path): done["meta"].get("decoding", {}).get("fps")})
        row.update(frames=len(results), faces=sum(len(e.get("faces", [])) for e in results),
                   errors=sum("error" in e for e in results))
        return row
    try:
        detector = _detector(backend, weights, threads)
        dropped = discard_stale(jsonl, run_settings(detector, path, None if path.is_dir() else decode))
        if dropped:
            log.warning("corpus item %s: %d frame(s) of an earlier attempt with other settings discarded", path,
                        dropped)
        if path.is_dir():
            entries = _image_entries(detector, path, jsonl)
        else:
            entries = detect_video(detector, path, every=every, jsonl=jsonl, progress=False, decode=decode)
        results, new = [], 0
        before = row["resumed"] = len(_done(jsonl))
        for entry in entries:
            results.append(entry)
            new = max(0, len(results) - before)
            if crash_after_frames is not None and new >= crash_after_frames and not marker.exists():
                marker.touch()
                os._exit(1)  # fault injection: the worker process dies mid-video
        if not results:
            raise InputError(f"{path}: no images found in the folder")
        meta = result_meta(detector, item=str(path), every=every, decode=decode,
                           requested={"backend": backend, "weights": weights})
        if not path.is_dir():
            meta["decoding"] = {**decode_record(path, decode), "frames": len(results)}
        write_face_csv(results, out_dir / csv_name(name), {str(path): meta.get("decoding", {}).get("fps")},
                       overwrite=True)
        write_json(out_dir / name, {"meta": meta, "results": results}, overwrite=True)
    except MtcnnLabError as err:  # an unusable input: nothing to resume
        remove_jsonl(jsonl)
        row.update(status="error", error=str(err))
        return row
    finally:
        row["seconds"] = round(time.perf_counter() - start, 3)
    remove_jsonl(jsonl)
    marker.unlink(missing_ok=True)
    row.update(frames=len(results), faces=sum(len(e.get("faces", [])) for e in results),
               errors=sum("error" in e for e in results))
    return row


def _done(jsonl: Path) -> dict:
    from mtcnn_lab.io.entries import read_done_frames

    return read_done_frames(jsonl)


def is_complete(result: Path, every: int, decode: str, backend: str = "auto", weights: str = "auto") -> bool:
    """True when ``result`` is a finished result file made with this ``every``, decode profile, and requested
    ``backend`` and ``weights`` (resume check: a run with other settings redoes the item)."""
    try:
        data = json.loads(result.read_text())
        return (isinstance(data["results"], list) and data["meta"]["every"] == every
                and data["meta"].get("decode") == decode
                and data["meta"].get("requested") == {"backend": backend, "weights": weights})
    except (OSError, ValueError, KeyError, TypeError):
        return False
