"""The per-image and per-frame result entries, in the ``detect --json`` schema, and their JSON Lines files.

An entry is ``{"image": path, "frame": index (videos only), "width", "height", "faces": [...]}``, the
faces as :meth:`mtcnn_lab.detections.Detections.faces` gives them (the C++ reference's fields). Videos run
frame by frame keep their entries in a JSON Lines file, one entry a line, appended as they are computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


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
