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

from mtcnn_lab.detections import Detections, Detector
from mtcnn_lab.errors import MtcnnLabError, ParameterError, StaleResults
from mtcnn_lab.files import write_atomic
from mtcnn_lab.version import __version__

__all__ = [
    "result_entry", "error_entry", "frame_entry", "result_meta", "resume_jsonl", "read_done_frames",
    "remove_jsonl", "settings_file", "discard_stale", "log_batch_failure",
]

log = logging.getLogger(__name__)


SETTINGS_SUFFIX = ".settings.json"
"""The file beside a per-frame JSON Lines file that records what its frames depend on (:func:`resume_jsonl`)."""


def settings_file(jsonl: Path) -> Path:
    """The settings file of per-frame results ``jsonl``: ``<jsonl>.settings.json``."""
    return jsonl.with_name(jsonl.name + SETTINGS_SUFFIX)


def _normalised(settings: dict) -> dict:
    """``settings`` as it reads back from JSON (tuples as lists, paths as text)."""
    return json.loads(json.dumps(settings, default=str))


def _difference(stored: object, settings: dict) -> str:
    """What differs between the recorded settings and these, for a one-line message."""
    if not isinstance(stored, dict):
        return "whose settings are not recorded"
    flat = {}
    for key in sorted(set(stored) | set(settings)):
        old, new = stored.get(key), settings.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            flat.update({f"{key}.{k}": (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))})
        else:
            flat[key] = (old, new)
    changed = [f"{key} {old} (now {new})" for key, (old, new) in flat.items()
               if old != new and not key.startswith("source.")]
    if any(old != new for key, (old, new) in flat.items() if key.startswith("source.")):
        changed.insert(0, "another copy or version of the input (its size or modification time differ)")
    return "made with " + ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")


def resume_jsonl(jsonl: Path, settings: dict, image: str | None = None) -> dict[int, dict]:
    """The frames already in per-frame results ``jsonl`` (:func:`read_done_frames`), each entry's ``image`` set to
    ``image`` when given (the path as this run names the input), and the file rewritten so: without a torn last
    line, so that appending starts on a clean line.

    ``settings`` is what the frames depend on (detector, decoding, the input's size and modification time): an
    existing ``jsonl`` is resumed only when its settings file (:func:`settings_file`) records the same, and a new
    one gets that file; else :class:`~mtcnn_lab.errors.StaleResults` in one line, and nothing is changed (a file
    without a settings file, e.g. someone else's, is never resumed). A folder as ``jsonl`` is a ParameterError.
    """
    done = _resumable(jsonl, settings)
    if image is not None:
        done = {frame: dict(entry, image=image) for frame, entry in done.items()}
    if jsonl.exists():  # also when only a torn line is there: appending must start on a clean line
        jsonl.write_text("".join(json.dumps(done[k]) + "\n" for k in sorted(done)))
    write_atomic(settings_file(jsonl), (json.dumps(_normalised(settings), indent=1) + "\n").encode(),
                 overwrite=True)
    return done


def discard_stale(jsonl: Path, settings: dict) -> int:
    """For a run's own hidden per-frame file: delete ``jsonl`` and its settings file when :func:`resume_jsonl`
    would refuse them; how many lines were dropped (0: resumable, or no file)."""
    try:
        _resumable(jsonl, settings)
    except StaleResults as err:
        lines = len(jsonl.read_text(errors="replace").splitlines())
        log.info("discarding %d frame(s): %s", lines, err)
        remove_jsonl(jsonl)
        return lines
    return 0


def _resumable(jsonl: Path, settings: dict) -> dict[int, dict]:
    """:func:`resume_jsonl`'s checks and reading, with no change to any file."""
    if jsonl.is_dir():
        raise ParameterError(f"{jsonl} is a folder; give the path of a file for the per-frame results")
    if jsonl.exists():
        sidecar = settings_file(jsonl)
        try:
            stored = json.loads(sidecar.read_text())
        except (OSError, ValueError, RecursionError):  # RecursionError: nested too deep
            stored = None
        wanted = _normalised(settings)
        if stored != wanted:
            raise StaleResults(f"{jsonl} holds frames of an earlier run {_difference(stored, wanted)}; "
                               f"delete it (and {sidecar.name}) or give another path")
    return read_done_frames(jsonl)


def remove_jsonl(jsonl: Path) -> None:
    """Delete per-frame results ``jsonl`` and its settings file (once the final results are written)."""
    jsonl.unlink(missing_ok=True)
    settings_file(jsonl).unlink(missing_ok=True)


def read_done_frames(jsonl: Path) -> dict[int, dict]:
    """Frame results already written to a JSON Lines file (a torn last line is ignored). Every other line must
    be a result entry (a ``frame`` index, and ``faces`` or ``error``), else
    :class:`~mtcnn_lab.errors.StaleResults`: the file is not per-frame results and is left alone."""
    done: dict[int, dict] = {}
    if not jsonl.exists():
        return done
    lines = jsonl.read_text(errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep
            if number == len(lines):
                break  # the line being written when the run stopped
            entry = None
        frame = entry.get("frame") if isinstance(entry, dict) else None
        if not (isinstance(frame, int) and not isinstance(frame, bool) and frame >= 0
                and ("faces" in entry or "error" in entry)):
            raise StaleResults(f"{jsonl} is not a per-frame results file (line {number}); give another path for "
                               "the per-frame results, or delete that file")
        done[frame] = entry
    return done


def result_entry(image: str, frame: int | None, pixels: np.ndarray, detections: Detections) -> dict:
    """The entry of one image (``frame`` None) or video frame: its size in pixels and its faces."""
    return {"image": image, "frame": frame, "width": pixels.shape[1], "height": pixels.shape[0],
            "faces": detections.faces()}


def error_entry(image: str, frame: int | None, error: str) -> dict:
    """The entry of an input that could not be read, with the one-line reason."""
    return {"image": image, "frame": frame, "error": error}


def frame_entry(detector: Detector, image: str, index: int, frame: np.ndarray,
                detections: Detections | None = None) -> dict:
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
