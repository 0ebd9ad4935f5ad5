"""The per-image and per-frame result entries, in the ``detect --json`` schema, and their JSON Lines files.

An entry is ``{"image": path, "frame": index (videos only), "width", "height", "faces": [...]}``, the
faces as :meth:`mtcnn_lab.detections.Detections.faces` gives them (the C++ reference's fields). Videos run
frame by frame keep their entries in a JSON Lines file, one entry a line, appended as they are computed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mtcnn_lab.errors import MtcnnLabError
from mtcnn_lab.version import __version__

__all__ = [
    "result_entry", "error_entry", "frame_entry", "result_meta", "resume_jsonl", "read_done_frames",
    "log_batch_failure",
]

log = logging.getLogger(__name__)


def resume_jsonl(jsonl: Path) -> dict[int, dict]:
    """:func:`read_done_frames`, and the file rewritten without a torn last line, so that appending
    starts on a clean line."""
    done = read_done_frames(jsonl)
    if jsonl.exists():  # also when only a torn line is there: appending must start on a clean line
        jsonl.write_text("".join(json.dumps(done[k]) + "\n" for k in sorted(done)))
    return done


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


def result_entry(image: str, frame: int | None, pixels: np.ndarray, detections) -> dict:
    """The entry of one image (``frame`` None) or video frame: its size in pixels and its faces."""
    return {"image": image, "frame": frame, "width": pixels.shape[1], "height": pixels.shape[0],
            "faces": detections.faces()}


def error_entry(image: str, frame: int | None, error: str) -> dict:
    """The entry of an input that could not be read, with the one-line reason."""
    return {"image": image, "frame": frame, "error": error}


def frame_entry(detector, image: str, index: int, frame: np.ndarray, detections=None) -> dict:
    """The result entry of frame ``index`` of video ``image``. ``detections``: the frame's, when already
    detected (else ``detector.detect(frame)``)."""
    return result_entry(image, index, frame, detector.detect(frame) if detections is None else detections)


def result_meta(detector, **extra) -> dict:
    """The ``meta`` of a results file: backend, weight set and its source, cascade parameters, version,
    then ``extra``."""
    return {"backend": detector.backend.name, "weights": detector.weights.name,
            "weights_source": detector.weights.source, "params": asdict(detector.params), "version": __version__,
            **extra}


def log_batch_failure(image: str, frames: Sequence[int], err: Exception) -> None:
    """Log that frames ``frames`` of ``image`` failed as one batch and are detected one by one instead:
    at INFO for an input or parameter problem (:class:`~mtcnn_lab.errors.MtcnnLabError`, raised again by
    its frame), at WARNING for anything else, which would be a bug of the batched path."""
    level = logging.INFO if isinstance(err, MtcnnLabError) else logging.WARNING
    log.log(level, "%s: frames %d-%d failed as one batch (%s: %s); detecting them one by one", image,
            frames[0], frames[-1], type(err).__name__, err)
