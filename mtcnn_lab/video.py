"""Streaming detection over a video: decode in one thread, detect in another, write as you go.

Frames are decoded sequentially by a background thread into a small bounded queue (constant
memory whatever the video's length) while the caller's thread runs the detector. Each frame's
result is appended to a JSON Lines file as soon as it is known and flushed, so an interrupted run
loses nothing; running again with the same file resumes after the last frame written.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .frames import iter_video_frames

_END = object()


def _decoder(path: str, step: int, out: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in iter_video_frames(path, step=step):
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
    except Exception as err:  # handed to the consumer, which raises it in its own thread
        out.put(err)
        return
    out.put(_END)


def stream_frames(path: str | os.PathLike, step: int = 1, buffer: int = 8) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame index, BGR frame)`` for every ``step``-th frame, decoded by a background thread
    at most ``buffer`` frames ahead."""
    iter_video_frames(path, step=step)  # check the path and the step in the caller's thread
    frames: queue.Queue = queue.Queue(maxsize=buffer)
    stop = threading.Event()
    thread = threading.Thread(target=_decoder, args=(os.fspath(path), step, frames, stop), daemon=True)
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


def frame_count_estimate(path: str | os.PathLike) -> int | None:
    """The container's frame count (may be off by a few; used only for the progress bar)."""
    capture = cv2.VideoCapture(os.fspath(path))
    try:
        n = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return n if n > 0 else None


def read_done_frames(jsonl: Path) -> dict[int, dict]:
    """Frame results already written to a JSON Lines file (a torn last line is ignored)."""
    done: dict[int, dict] = {}
    if not jsonl.exists():
        return done
    with jsonl.open() as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break  # the line being written when the run stopped
            done[int(entry["frame"])] = entry
    return done


def detect_video(detector, path: str | os.PathLike, every: int = 1, jsonl: str | os.PathLike | None = None,
                 progress: bool = True) -> Iterator[dict]:
    """Detect faces in every ``every``-th frame of a video; yield one result entry per frame.

    Entries have the fields of the ``detect --json`` results (``image``, ``frame``, ``width``,
    ``height``, ``faces``). With ``jsonl``, each entry is appended to that file and flushed as soon
    as it is computed; frames already in the file are not detected again (resume) but still yielded.
    """
    path = os.fspath(path)
    out = Path(jsonl) if jsonl is not None else None
    done = read_done_frames(out) if out is not None else {}
    if out is not None and done:  # drop a torn last line so appending starts on a clean line
        out.write_text("".join(json.dumps(done[k]) + "\n" for k in sorted(done)))
    total = frame_count_estimate(path)
    bar = tqdm(total=None if total is None else -(-total // every), desc=Path(path).name, unit="frame",
               disable=not progress, leave=False)
    handle = out.open("a") if out is not None else None
    try:
        for index, frame in stream_frames(path, every):
            entry = done.get(index)
            if entry is None:
                detections = detector.detect(frame)
                entry = {"image": path, "frame": index, "width": frame.shape[1], "height": frame.shape[0],
                         "faces": detections.faces()}
                if handle is not None:
                    handle.write(json.dumps(entry) + "\n")
                    handle.flush()
            bar.update(1)
            yield entry
    finally:
        bar.close()
        if handle is not None:
            handle.close()
