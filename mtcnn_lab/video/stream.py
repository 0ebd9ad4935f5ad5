"""Streaming detection over a video: decode in one thread, detect in another, write as you go.

Frames are decoded sequentially by a background thread into a small bounded queue (constant
memory whatever the video's length) while the caller's thread runs the detector, or, with
``workers > 1``, worker processes do (:mod:`mtcnn_lab.video.workers`). Each frame's result is
appended to a JSON Lines file as soon as it is known and flushed, so an interrupted run loses
nothing; running again with the same file resumes after the last frame written.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mtcnn_lab.checks import positive_int
from mtcnn_lab.detections import BatchDetector, Detector
from mtcnn_lab.detector import MTCNN
from mtcnn_lab.errors import ParameterError
from mtcnn_lab.files import writable_folder
from mtcnn_lab.io.decode.probe import probe_video
from mtcnn_lab.io.decode.profiles import get_profile
from mtcnn_lab.io.entries import appending, frame_entry, log_batch_failure, result_meta, resume_jsonl
from mtcnn_lab.io.images import pixels_sha256
from mtcnn_lab.io.paths import check_file, path_text
from mtcnn_lab.io.videos import Decode, check_every, iter_video_frames

__all__ = ["stream_frames", "detect_video", "run_settings"]

_END = object()


def _hand_over(item: object, out: queue.Queue, stop: threading.Event) -> bool:
    """Put ``item`` on ``out`` unless the consumer stops first (then False): a full queue never blocks
    the decoder once the consumer has gone."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _decoder(path: str, step: int, decode: Decode, out: queue.Queue, stop: threading.Event) -> None:
    try:
        # one FFmpeg thread: less CPU time in all than FFmpeg's default, and the detection beside
        # it has the CPUs busy
        for item in iter_video_frames(path, step=step, decode_threads=1, decode=decode):
            if not _hand_over(item, out, stop):
                return
    except Exception as err:  # handed to the consumer, which raises it in its own thread
        _hand_over(err, out, stop)
        return
    _hand_over(_END, out, stop)


def stream_frames(path: str | os.PathLike, step: int = 1, buffer: int = 8,
                  decode: Decode = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame index, BGR frame)`` for every ``step``-th frame, decoded with the profile ``decode``
    by a background thread at most ``buffer`` frames ahead."""
    profile = get_profile(decode)
    iter_video_frames(path, step=step, decode=profile).close()  # check the path and the step in this thread
    frames: queue.Queue = queue.Queue(maxsize=buffer)
    stop = threading.Event()
    thread = threading.Thread(target=_decoder, args=(os.fspath(path), step, profile, frames, stop), daemon=True)
    thread.start()
    try:
        while True:
            item = frames.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _hashed(frames: Iterable[tuple[int, np.ndarray]], hashes: dict[int, str]) -> Iterator[tuple[int, np.ndarray]]:
    """``frames`` unchanged, each frame's :func:`pixels_sha256` put in ``hashes`` by index on the way."""
    for index, frame in frames:
        hashes[index] = pixels_sha256(frame)
        yield index, frame


def _detect_in_caller(detector: Detector, image: str, frames: Iterable[tuple[int, np.ndarray]],
                      done: Mapping[int, dict]) -> Iterator[dict]:
    """Yield the result entry of each ``(frame index, frame)`` of ``frames``, in order, detected in this
    thread; frames whose index is in ``done`` are not detected, their entry there is yielded instead.
    A :class:`~mtcnn_lab.detections.BatchDetector` (:class:`~mtcnn_lab.MTCNN`) gets its ``preferred_batch``
    frames at a time (the same results, fewer network calls); any other detector one frame at a time."""
    batch = detector.preferred_batch if isinstance(detector, BatchDetector) else 1
    group: list[tuple[int, np.ndarray | None]] = []  # frame order; None: the entry is in done
    pending = 0  # frames of the group to detect
    for index, frame in frames:
        if index in done and not group:
            yield done[index]
            continue
        group.append((index, None if index in done else frame))
        pending += index not in done
        if pending == batch:
            yield from _group_entries(detector, image, group, done)
            group, pending = [], 0
    yield from _group_entries(detector, image, group, done)


def _group_entries(detector: Detector, image: str, group: list[tuple[int, np.ndarray | None]],
                   done: Mapping[int, dict]) -> Iterator[dict]:
    """The entries of one group, in order. When the group's batch fails, its frames are detected one by
    one, so the frames before a failing one are still yielded (and written) before it raises."""
    todo = [(index, frame) for index, frame in group if frame is not None]
    found: dict[int, object] = {}
    if len(todo) > 1 and isinstance(detector, BatchDetector):
        try:
            found = dict(zip([index for index, _ in todo],
                             detector.detect_batch([frame for _, frame in todo], batch=len(todo)), strict=True))
        except Exception as err:  # the frames are detected one by one below, where the error raises again
            log_batch_failure(image, [index for index, _ in todo], err)
    for index, frame in group:
        yield done[index] if frame is None else frame_entry(detector, image, index, frame, found.get(index))


def run_settings(detector: Detector, source: str | os.PathLike, decode: str | None, frame_hashes: bool = False) -> dict:
    """What per-frame results of ``source`` (a video, or a folder of images) depend on: the detector (backend,
    weights, parameters, version; a detector other than :class:`~mtcnn_lab.MTCNN` by its type), the decode
    profile, whether entries carry their frame's hash (``frame_hashes``), and the source's size and modification
    time. :func:`detect_video` resumes a ``jsonl`` only when it was written with the same."""
    if not os.path.isdir(source):
        check_file(os.fspath(source))  # one line for a missing or unreadable video
    stat = os.stat(source)
    who = result_meta(detector) if isinstance(detector, MTCNN) else {"detector": type(detector).__qualname__}
    return {**who, "decode": decode, "frame_hashes": frame_hashes,
            "source": {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}}


def detect_video(detector: Detector, path: str | os.PathLike, every: int = 1, jsonl: str | os.PathLike | None = None,
                 progress: bool = True, workers: int = 1, decode: Decode = None,
                 frame_hashes: bool = False) -> Iterator[dict]:
    """Detect faces in every ``every``-th frame of a video; yield one result entry per frame, in order.

    Entries have the fields of the ``detect --json`` results (``image``, ``frame``, ``width``,
    ``height``, ``faces``). With ``jsonl``, each entry is appended to that file and flushed as soon
    as it is computed; frames already in the file are not detected again (resume) but still yielded. A file
    written with other settings (:func:`run_settings`: detector, decode profile, ``frame_hashes``, the video
    itself), or that is not per-frame results of this video (each entry is checked, its frame size against the
    video's too), raises :class:`~mtcnn_lab.errors.StaleResults` and is left as is. A failed append (a full
    disk) raises a one-line :class:`~mtcnn_lab.errors.ParameterError`; the entries written before it stay.
    ``workers=1`` detects in the caller's thread, its ``preferred_batch`` frames at a time with a
    :class:`~mtcnn_lab.detections.BatchDetector` such as :class:`~mtcnn_lab.MTCNN` (``detect_batch``; four on the
    host), one at a time with any other detector.
    ``workers > 1`` detects on that many processes, each with its own copy of ``detector`` (an
    :class:`~mtcnn_lab.MTCNN` whose backend was given by name),
    rebuilt with one thread and bound to one CPU (:mod:`mtcnn_lab.video.workers`; while they start,
    ``detector`` itself detects). The entries are those of ``workers=1`` with
    the detector at one thread (``threads=1`` and one BLAS thread), on any CPU; at more threads, only
    where the runtime's sums do not depend on its thread count (OpenBLAS's and torch's do). Closing the
    generator stops the workers.

    Frames are decoded with the profile ``decode`` (None: the default; see
    :func:`~mtcnn_lab.io.decode.record.decode_record` for how to record it). With ``frame_hashes``, each
    entry also has ``pixels_bgr_sha256``, the SHA-256 of the frame's BGR bytes, to compare with a C++ run.
    A ``jsonl`` file is only resumed by a run with the same profile: name it after the profile to keep both.
    """
    positive_int(workers, "workers")
    every = check_every(every)
    if not isinstance(detector, Detector):
        raise ParameterError(f"detect_video needs a detector (e.g. mtcnn_lab.MTCNN()), not {type(detector).__name__}")
    path = path_text(path)
    if workers > 1:
        from mtcnn_lab.video.workers import detect_in_workers

        if not isinstance(detector, MTCNN):
            raise ParameterError(f"workers > 1 needs an MTCNN detector (rebuilt in each worker), not a "
                                 f"{type(detector).__name__}; use workers=1")
        recipe = detector.recipe(threads=1)
    out = Path(jsonl) if jsonl is not None else None
    if out is not None:
        writable_folder(out.parent, "give a per-frame results path (jsonl, or --json) in a writable folder", out)
    profile = get_profile(decode)
    settings = run_settings(detector, path, profile.name, frame_hashes) if out is not None else None
    stream = stream_frames(path, every, decode=profile)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(stream.close)
        first = next(stream, None)  # its size is the video's: resumed entries must have it
        size = None if first is None else (first[1].shape[1], first[1].shape[0])
        done = resume_jsonl(out, settings, path, size) if out is not None else {}
        total = probe_video(path).header_frames if progress else 0  # may be off by a few: only for the bar
        bar = cleanup.enter_context(tqdm(total=-(-total // every) if total else None, desc=Path(path).name,
                                         unit="frame", disable=not progress, leave=False))
        frames: Iterator[tuple[int, np.ndarray]] = itertools.chain([] if first is None else [first], stream)
        hashes: dict[int, str] = {}
        if frame_hashes:
            frames = cleanup.enter_context(contextlib.closing(_hashed(frames, hashes)))
        if workers == 1:
            entries = _detect_in_caller(detector, path, frames, done)
        else:
            entries = detect_in_workers(recipe, path, frames, done, workers,
                                        local=lambda index, frame: frame_entry(detector, path, index, frame))
        cleanup.enter_context(contextlib.closing(entries))
        append = cleanup.enter_context(appending(out)) if out is not None else None
        for entry in entries:
            if entry["frame"] in hashes:
                entry["pixels_bgr_sha256"] = hashes.pop(entry["frame"])
            if append is not None and entry["frame"] not in done:
                append(entry)
            bar.update(1)
            yield entry
