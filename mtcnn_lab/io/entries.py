"""The per-image and per-frame result entries, in the ``detect --json`` schema, and their JSON Lines files.

An entry is ``{"image": path, "frame": index (videos only), "width", "height", "faces": [...]}``, the
faces as :meth:`mtcnn_lab.detections.Detections.faces` gives them (the C++ reference's fields). Videos run
frame by frame keep their entries in a JSON Lines file, one entry a line, appended as they are computed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mtcnn_lab.errors import MtcnnLabError

log = logging.getLogger(__name__)


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


def frame_entry(detector, image: str, index: int, frame: np.ndarray, detections=None) -> dict:
    """The result entry of frame ``index`` of video ``image``: the fields of the ``detect --json`` results.
    ``detections``: the frame's, when already detected (else ``detector.detect(frame)``)."""
    found = detector.detect(frame) if detections is None else detections
    return {"image": image, "frame": index, "width": frame.shape[1], "height": frame.shape[0],
            "faces": found.faces()}


def log_batch_failure(image: str, frames: Sequence[int], err: Exception) -> None:
    """Log that frames ``frames`` of ``image`` failed as one batch and are detected one by one instead:
    at INFO for an input or parameter problem (:class:`~mtcnn_lab.errors.MtcnnLabError`, raised again by
    its frame), at WARNING for anything else, which would be a bug of the batched path."""
    level = logging.INFO if isinstance(err, MtcnnLabError) else logging.WARNING
    log.log(level, "%s: frames %d-%d failed as one batch (%s: %s); detecting them one by one", image,
            frames[0], frames[-1], type(err).__name__, err)
