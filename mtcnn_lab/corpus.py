"""Many videos on many machines: a corpus processed by Dask, one result file per video.

A *corpus* is a folder (searched recursively) or a manifest (``data/manifest.json`` schema: its
``root`` and ``videos``). Each video is one item, and so is each folder of still images. Every item
becomes one task, :func:`process_video`, run on a Dask worker; :func:`run_corpus` submits them to a
``LocalCluster`` (default) or an existing scheduler and collects a summary.

Guarantees:

* **One result file per item**, ``OUT/<relative path with / as __>.json`` in the
  ``detect --json`` schema, written atomically (never half-written). It holds no
  timings, host names or worker ids, so a run on 1 worker and a run on N workers give byte-identical
  files. Beside it, ``OUT/<name>.csv`` (:func:`csv_name`) has one row per face and per frame without faces
  (:mod:`mtcnn_lab.io.face_table`), written before the result file that marks the item complete.
  Timings and errors go to ``OUT/summary.json`` and ``OUT/summary.csv``.
* **Resume**: an item whose result file exists (and was made with the same ``every``, decode
  profile, backend and weights) is skipped. While a video is processed its per-frame results are appended to
  a hidden JSON Lines file ``OUT/.<name>.<profile>.frames.jsonl``; a task retried after its worker died resumes
  from it, unless it was written with other settings (:func:`~mtcnn_lab.video.stream.run_settings`): then it
  is discarded.
* **Decoding**: videos are decoded with one decode profile (:mod:`mtcnn_lab.io.decode.profiles`); each
  video's result file records how (``meta.decoding``: profile, libraries, stream, rotation, frames).
* **Failures**: a corrupt or unreadable input gives an ``error`` row in the summary (one-line
  message) and the other items go on. A worker that dies mid-video is replaced by Dask's nanny and
  the task is rescheduled (up to ``distributed.scheduler.allowed-failures`` times); exceptions are
  retried ``retries`` times.
* **Ctrl-C** cancels the tasks, closes the cluster and removes the partial files, so OUT holds only
  complete result files.

Fault injection (tests and ``scripts/reliability_report.py`` only): ``process_video(...,
crash_after_frames=N)`` kills its own worker process with ``os._exit(1)`` after detecting N frames,
once per item: a marker file ``OUT/.<name>.crashed`` records the crash, so the retry completes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from mtcnn_lab.checks import positive_int
from mtcnn_lab.errors import InputError, MtcnnLabError, ParameterError
from mtcnn_lab.files import writable_folder, write_json
from mtcnn_lab.io.face_table import is_face_table, write_face_csv
from mtcnn_lab.io.manifests import manifest_videos
from mtcnn_lab.io.paths import IMAGE_SUFFIXES, VIDEO_SUFFIXES, PathLike

log = logging.getLogger(__name__)

__all__ = ["csv_name", "find_corpus", "is_complete", "output_name", "process_video", "run_corpus"]


_DETECTORS: dict[tuple, object] = {}  # one detector per (backend, weights, threads) per worker process


# --------------------------------------------------------------------------------------------
# finding the items
# --------------------------------------------------------------------------------------------


def _image_folders_and_videos(root: Path) -> list[Path]:
    items: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        names = sorted(f for f in files if not f.startswith("."))
        items += [Path(folder) / f for f in names if Path(f).suffix.lower() in VIDEO_SUFFIXES]
        if any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in names):
            items.append(Path(folder))
    return sorted(items)


def _from_manifest(manifest: Path) -> list[Path]:
    """The videos a manifest lists, or every item under its root when it lists none."""
    root, videos = manifest_videos(manifest)
    return _image_folders_and_videos(root) if videos is None else videos


def find_corpus(dir_or_manifest: PathLike) -> list[Path]:
    """The items of a corpus, sorted: every video (by suffix) below a folder, searched recursively
    (hidden names skipped), plus each folder that holds still images as one item; or the videos of
    a manifest JSON (its ``root`` folder scanned when it lists no ``videos``)."""
    source = Path(dir_or_manifest)
    if source.is_dir():
        items = _image_folders_and_videos(source)
    elif source.is_file() and source.suffix.lower() == ".json":
        items = _from_manifest(source)
    elif source.exists():
        raise InputError(f"{source}: give a folder of videos/images or a manifest .json")
    else:
        raise InputError(f"{source}: no such folder or manifest; check the path")
    if not items:
        raise InputError(f"{source}: no videos ({', '.join(sorted(VIDEO_SUFFIXES)[:4])}, ...) or images found")
    return items


def output_name(item: PathLike, root: PathLike | None = None) -> str:
    """The result file name of an item: its path relative to ``root`` with ``/`` as ``__``, plus
    ``.json`` (``clips/a.avi`` -> ``clips__a.avi.json``; the suffix keeps ``a.avi`` and ``a.mp4``
    apart)."""
    item = Path(item)
    rel = item.name
    if root is not None:
        with contextlib.suppress(ValueError):
            rel = item.resolve().relative_to(Path(root).resolve()).as_posix()
    rel = rel if rel not in ("", ".") else (Path(item).resolve().name or "root")
    return rel.replace("/", "__") + ".json"


def csv_name(name: str) -> str:
    """The per-frame face table beside result file ``name`` (``clips__a.avi.json`` -> ``clips__a.avi.csv``)."""
    return name.removesuffix(".json") + ".csv"


# --------------------------------------------------------------------------------------------
# one item (runs on a worker)
# --------------------------------------------------------------------------------------------


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

    done = resume_jsonl(jsonl, settings=run_settings(detector, folder, None))
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
    ``detect --json`` schema; per-frame results go to ``out_dir/.<name>.frames.jsonl`` as they are
    computed (a rerun resumes from it) and that file is removed once the result file is written.
    Returns a summary row: ``item``, ``output``, ``status`` (``ok``/``error``), ``frames``,
    ``faces``, ``errors`` (unreadable images of a folder), ``resumed`` (frames taken from the partial
    file of an earlier attempt), ``seconds``, ``worker``, ``error``.
    An unusable input (:class:`MtcnnLabError`) gives an ``error`` row, writes no result file, and
    does not raise. ``crash_after_frames``: fault injection, see the module docstring. ``decode``: the
    decode profile of a video (None: the default).
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
        video = None if path.is_dir() else str(path)
        discard_stale(jsonl, video, run_settings(detector, path, None if video is None else decode))
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


# --------------------------------------------------------------------------------------------
# the corpus (runs on the client)
# --------------------------------------------------------------------------------------------


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


def _cleanup(out_dir: Path) -> list[Path]:
    """Remove the partial files a run leaves when stopped: per-frame JSON Lines, atomic-write temp
    files, crash markers and face tables (recognised by their header) whose result file was not written."""
    patterns = (".*.frames.jsonl", ".*.frames.jsonl.settings.json", ".*.part", ".*.crashed")
    partial = [p for pattern in patterns for p in out_dir.glob(pattern)]
    partial += [p for p in out_dir.glob("*.csv")
                if not (out_dir / (p.name.removesuffix(".csv") + ".json")).exists() and is_face_table(p)]
    removed = []
    for path in partial:
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def _row(item: Path, name: str, status: str, error: str = "") -> dict:
    """A summary row of an item that was not processed here (``skipped``) or whose task failed (``error``)."""
    done = status == "skipped"
    return {"item": str(item), "output": name, "status": status, "frames": None if done else 0,
            "faces": None if done else 0, "errors": None if done else 0, "resumed": 0, "seconds": 0.0, "worker": "",
            "error": error}


def _plan(items: Sequence[PathLike], out_dir: Path, every: int, decode: str, root: PathLike | None,
          backend: str, weights: str) -> tuple[list[dict], list[tuple[Path, str]]]:
    """The rows of the items already complete, and the ``(item, result name)`` of the others."""
    items = [Path(item).resolve() for item in items]
    names = [output_name(item, root) for item in items]
    if len(set(names)) != len(names):
        raise ParameterError("two corpus items map to the same result file name; pass root= (the corpus folder)")
    complete = [is_complete(out_dir / name, every, decode, backend, weights) for name in names]
    done = [_row(item, name, "skipped") for item, name, ok in zip(items, names, complete, strict=True) if ok]
    todo = [(item, name) for item, name, ok in zip(items, names, complete, strict=True) if not ok]
    return done, todo


def _local_cluster(n_workers: int | None):
    """A LocalCluster of ``n_workers`` (default: the CPU count) single-threaded worker processes."""
    from distributed import LocalCluster

    quiet = logging.getLogger("distributed").getEffectiveLevel() > logging.DEBUG
    return LocalCluster(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                        dashboard_address=":0", silence_logs=logging.WARNING if quiet else False)


def _gather(client, futures: list, todo: list[tuple[Path, str]], progress: bool) -> list[dict]:
    """The summary rows of ``futures`` as they finish (a task that kept failing gives an ``error`` row)."""
    from distributed import as_completed
    from tqdm import tqdm

    by_key = {f.key: (item, name) for f, (item, name) in zip(futures, todo, strict=True)}
    rows: list[dict] = []
    with tqdm(total=len(futures), desc="corpus", unit="video", disable=not progress) as bar:
        for future in as_completed(futures):
            item, name = by_key[future.key]
            try:
                row = future.result()
            except Exception as err:  # a task that kept failing, or a worker that kept dying: its row says why
                log.warning("corpus item %s failed: %s: %s", item, type(err).__name__, err)
                row = _row(item, name, "error", " ".join(f"{type(err).__name__}: {err}".split()))
            rows.append(row)
            bar.set_postfix_str(f"errors={sum(r['status'] == 'error' for r in rows)}")
            bar.update(1)
    client.cancel(futures)  # release the results: a worker lost now must not rerun finished tasks
    return rows


def _cancel(client, futures: list) -> None:
    """Cancel the tasks after Ctrl-C; a client that cannot is logged, the interrupt goes on."""
    try:
        client.cancel(futures, force=True)
    except Exception as err:  # the scheduler may already be gone
        log.warning("could not cancel the corpus tasks (%s: %s)", type(err).__name__, err)


SCHEDULER_TIMEOUT_S = 10
"""How long to wait for a scheduler given by address before saying it cannot be reached."""


def _client(client_class, scheduler: str | None, cluster):
    """A Dask client of ``scheduler`` (an address) or of ``cluster``; an address that is malformed or does not
    answer within :data:`SCHEDULER_TIMEOUT_S` is a one-line ParameterError."""
    if scheduler is None:
        return client_class(cluster)
    try:
        return client_class(scheduler, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, ValueError, TypeError) as err:  # distributed's errors for a bad or silent address
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ParameterError(f"cannot connect to the Dask scheduler {scheduler!r} ({reason}); give its address "
                             "as tcp://host:8786, or leave --scheduler out for a local cluster") from None


def run_corpus(items: Sequence[PathLike], out_dir: PathLike, scheduler: str | None = None,
               n_workers: int | None = None, every: int = 1, backend: str = "auto", weights: str = "auto",
               retries: int = 2, threads: int = 1, root: PathLike | None = None, progress: bool = True,
               client=None, crash_after_frames: dict[str, int] | None = None, decode: str | None = None) -> list[dict]:
    """Process every item on Dask; write result files, ``summary.json`` and ``summary.csv``.

    ``scheduler``: address of an existing Dask scheduler (``tcp://host:8786``); default a
    ``LocalCluster`` with ``n_workers`` (default: the CPU count) single-threaded worker processes.
    ``client``: an existing ``distributed.Client`` to use instead (not closed here). ``root``: the
    corpus folder, for the result file names (:func:`output_name`). Items whose result file is
    complete are skipped (``status`` ``skipped``). Returns the summary rows sorted by item.
    ``crash_after_frames``: fault injection, ``{item path: N}`` (see :func:`process_video`). ``decode``:
    the videos' decode profile (None: the default); a result file made with another one is redone.
    """
    from distributed import Client

    from mtcnn_lab.io.decode.profiles import get_profile
    from mtcnn_lab.io.tables import save_table

    # 1. check the arguments and find what is left to do
    if isinstance(items, str | os.PathLike):
        raise ParameterError(f"run_corpus takes a list of items, not the path {items}; pass find_corpus({items!r})")
    positive_int(every, "every")
    positive_int(n_workers, "n_workers", optional=True)
    out_dir = writable_folder(out_dir, "choose another output folder (--out)")
    decode = get_profile(decode).name
    rows, todo = _plan(items, out_dir, every, decode, root, backend, weights)
    crash = {str(Path(k).resolve()): v for k, v in (crash_after_frames or {}).items()}
    start = time.perf_counter()
    given_client = client is not None
    own_cluster = own_client = None
    futures = []
    try:
        if todo:
            # 2. connect: the caller's client, a scheduler's, or a local cluster of our own
            if client is None:
                own_cluster = None if scheduler is not None else _local_cluster(n_workers)
                own_client = client = _client(Client, scheduler, own_cluster)
            # 3. one task per item, each writing its result file; gather the summary rows
            futures = [client.submit(process_video, str(item), str(out_dir), backend, weights, every, threads,
                                     name, crash.get(str(item)), decode, retries=retries, pure=False,
                                     key=f"mtcnn-corpus-{name}-{time.time_ns()}")
                       for item, name in todo]
            rows += _gather(client, futures, todo, progress)
    except KeyboardInterrupt:
        # Ctrl-C: cancel, close what we started, leave no partial file
        if futures and client is not None:
            _cancel(client, futures)
        _close(own_client, own_cluster)
        own_client = own_cluster = None
        _cleanup(out_dir)
        raise
    finally:
        if own_cluster is not None:
            _close(own_client, own_cluster)
            _cleanup(out_dir)  # every worker has stopped: nothing partial can still be written
        else:
            _close(own_client, None)
    # 4. the summary
    rows.sort(key=lambda r: r["item"])
    meta = {"items": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
            "skipped": sum(r["status"] == "skipped" for r in rows),
            "error": sum(r["status"] == "error" for r in rows), "every": every, "decode": decode, "backend": backend,
            "weights": weights, "scheduler": scheduler or ("client" if given_client else "LocalCluster"),
            "seconds": round(time.perf_counter() - start, 3)}
    save_table(rows, "summary", out_dir, meta=meta)
    return rows


def _close(client, cluster) -> None:
    """Close the client and the cluster this run started; one that fails to close is logged."""
    for thing in (client, cluster):
        if thing is not None:
            try:
                thing.close()
            except Exception as err:  # a cluster half torn down by Ctrl-C: the run's result stands
                log.warning("could not close the Dask %s (%s: %s)", type(thing).__name__, type(err).__name__, err)
