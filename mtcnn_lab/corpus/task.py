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
from mtcnn_lab.files import atomic_leftovers, write_json
from mtcnn_lab.io.face_table import write_face_csv
from mtcnn_lab.io.paths import IMAGE_SUFFIXES, PathLike, check_file

log = logging.getLogger(__name__)

__all__ = ["process_video", "is_complete", "item_source", "partial_files"]

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


def _images(folder: Path) -> list[Path]:
    """The still images of an image-folder item, sorted by name (hidden names skipped)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def item_source(item: Path) -> dict:
    """What an item's results depend on besides the settings: a video's size and modification time (bytes, ns);
    for a folder of images, each image's name, size and modification time (an image overwritten in place
    changes neither the folder's size nor its time). A one-line InputError for a video that cannot be used."""
    if item.is_dir():
        return {"images": [[p.name, st.st_size, st.st_mtime_ns] for p in _images(item) for st in [p.stat()]]}
    check_file(str(item))
    stat = item.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _image_entries(detector, folder: Path, jsonl: Path, settings: dict):
    """Entries for the still images of a folder (sorted by name), resumable through ``jsonl`` written with
    ``settings``."""
    from mtcnn_lab.io.entries import error_entry, result_entry, resume_jsonl
    from mtcnn_lab.io.images import read_image

    done = resume_jsonl(jsonl, settings)
    with jsonl.open("a") as handle:
        for index, path in enumerate(_images(folder)):
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


def partial_files(out_dir: Path, name: str, decode: str) -> list[Path]:
    """The hidden files :func:`process_video` of result ``name`` (decode profile ``decode``) may leave in
    ``out_dir`` when stopped, those that exist: its per-frame results and their settings file, its crash marker, and
    the temporary files of its atomic writes. No other file (another item's, a user's) is listed."""
    from mtcnn_lab.io.entries import settings_file

    jsonl = _jsonl(out_dir, name, decode)
    own = [jsonl, settings_file(jsonl), _marker(out_dir, name)]
    targets = (out_dir / name, out_dir / csv_name(name), settings_file(jsonl))
    return [p for p in own if p.exists()] + [p for target in targets for p in atomic_leftovers(target)]


def _jsonl(out_dir: Path, name: str, decode: str) -> Path:
    return out_dir / f".{name}.{decode}.frames.jsonl"


def _marker(out_dir: Path, name: str) -> Path:
    return out_dir / f".{name}.crashed"


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
    jsonl, marker = _jsonl(out_dir, name, decode), _marker(out_dir, name)
    # a finished task rerun by Dask (its worker died after it ended), or an item whose face table is missing
    done = _current(out_dir / name, path, every, decode, backend, weights)
    if done is not None:
        results = done["results"]
        if not (out_dir / csv_name(name)).exists():  # deleted, or the task stopped between the two files
            write_face_csv(results, out_dir / csv_name(name), {str(path): done["meta"].get("decoding", {}).get("fps")})
        row.update(frames=len(results), faces=sum(len(e.get("faces", [])) for e in results),
                   errors=sum("error" in e for e in results))
        return row
    try:
        detector = _detector(backend, weights, threads)
        settings = run_settings(detector, path, None if path.is_dir() else decode)
        settings["source"] = source = item_source(path)  # for a folder: each image, not the folder's own time
        dropped = discard_stale(jsonl, settings)
        if dropped:
            log.warning("corpus item %s: %d frame(s) of an earlier attempt with other settings discarded", path,
                        dropped)
        if path.is_dir():
            entries = _image_entries(detector, path, jsonl, settings)
        else:
            entries = detect_video(detector, path, every=every, jsonl=jsonl, progress=False, decode=decode)
        results, new = [], 0
        before = row["resumed"] = len(_done(jsonl))
        closing = _worker_closing()
        for entry in entries:
            if closing():
                raise WorkerClosing(f"corpus item {path}: stopped, its Dask worker is closing")
            results.append(entry)
            new = max(0, len(results) - before)
            if crash_after_frames is not None and new >= crash_after_frames and not marker.exists():
                marker.touch()
                os._exit(1)  # fault injection: the worker process dies mid-video
        if not results:
            raise InputError(f"{path}: no images found in the folder")
        meta = result_meta(detector, item=str(path), every=every, decode=decode,
                           requested={"backend": backend, "weights": weights}, source=source)
        if not path.is_dir():
            meta["decoding"] = {**decode_record(path, decode), "frames": len(results)}
        # the result file first, then its face table: a stop in between leaves the item incomplete, and the
        # next run writes the table from the result file; the old table goes first, so none is left beside a new
        # result file
        (out_dir / csv_name(name)).unlink(missing_ok=True)
        write_json(out_dir / name, {"meta": meta, "results": results}, overwrite=True)
        write_face_csv(results, out_dir / csv_name(name), {str(path): meta.get("decoding", {}).get("fps")})
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


class WorkerClosing(Exception):
    """The Dask worker running a task is closing (e.g. the client was stopped by Ctrl-C): the task stops between
    frames, so that the worker process can end at once."""


def _worker_closing():
    """A function that tells whether the Dask worker running this task is closing; outside a worker, never."""
    try:
        from distributed import get_worker
        from distributed.core import Status

        worker = get_worker()
    except (ImportError, ValueError):  # not on a Dask worker (a direct call)
        return lambda: False
    return lambda: worker.status not in (Status.running, Status.paused)


def _done(jsonl: Path) -> dict:
    from mtcnn_lab.io.entries import read_done_frames

    return read_done_frames(jsonl)


def _current(result: Path, item: Path, every: int, decode: str, backend: str, weights: str) -> dict | None:
    """The data of result file ``result`` when it is finished and was made from ``item`` as it is now
    (:func:`item_source`) with these settings; else None."""
    try:
        data = json.loads(result.read_text())
        meta = data["meta"]
        current = (isinstance(data["results"], list) and meta["every"] == every and meta.get("decode") == decode
                   and meta.get("requested") == {"backend": backend, "weights": weights}
                   and meta.get("source") == item_source(Path(item)))
    except (OSError, ValueError, KeyError, TypeError, RecursionError, MtcnnLabError):
        return None
    return data if current else None


def is_complete(result: Path, item: PathLike, every: int, decode: str, backend: str = "auto",
                weights: str = "auto") -> bool:
    """True when ``result`` is a finished result file of ``item`` as the item is now (a video's size and time, each
    image of a folder: :func:`item_source`), made with this ``every``, decode profile, and requested ``backend``
    and ``weights``, and its face table (:func:`~mtcnn_lab.corpus.items.csv_name`) exists beside it (resume check:
    anything else redoes the item)."""
    result = Path(result)
    return (result.with_name(csv_name(result.name)).exists()
            and _current(result, Path(item), every, decode, backend, weights) is not None)
