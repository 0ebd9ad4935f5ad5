"""The per-image and per-frame result entries, in the ``detect --json`` schema, and their JSON Lines files.

An entry is ``{"image": path, "frame": index (videos only), "width", "height", "faces": [...]}``, the
faces as :meth:`mtcnn_lab.detections.Detections.faces` gives them (the C++ reference's fields). Videos run
frame by frame keep their entries in a JSON Lines file, one entry a line, appended as they are computed.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mtcnn_lab.detections import Detections, Detector
from mtcnn_lab.errors import MtcnnLabError, ParameterError, StaleResults
from mtcnn_lab.files import write_atomic
from mtcnn_lab.version import __version__

__all__ = [
    "result_entry", "error_entry", "frame_entry", "result_meta", "resume_jsonl", "read_done_frames", "entry_problem",
    "appending", "remove_jsonl", "settings_file", "discard_stale", "log_batch_failure",
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


def resume_jsonl(jsonl: Path, settings: dict, image: str | None = None,
                 frame_size: tuple[int, int] | None = None) -> dict[int, dict]:
    """The frames already in per-frame results ``jsonl`` (:func:`read_done_frames`, ``frame_size`` checked there),
    each entry's ``image`` set to ``image`` when given (the path as this run names the input), and the file
    rewritten so: without a torn last line, so that appending starts on a clean line.

    ``settings`` is what the frames depend on (detector, decoding, the output's fields, the input's size and
    modification time): an existing ``jsonl`` is resumed only when its settings file (:func:`settings_file`)
    records the same and each of its entries fits, and a new one gets that file; else
    :class:`~mtcnn_lab.errors.StaleResults` in one line, and nothing is changed (a file without a settings file,
    e.g. someone else's, is never resumed). A folder as ``jsonl`` is a ParameterError, and so is a file that
    cannot be written (a full disk).
    """
    _check_settings(jsonl, settings)
    done = read_done_frames(jsonl, frame_size)
    if image is not None:
        done = {frame: dict(entry, image=image) for frame, entry in done.items()}
    try:
        if jsonl.exists():  # also when only a torn line is there: appending must start on a clean line
            jsonl.write_text("".join(json.dumps(done[k]) + "\n" for k in sorted(done)))
        write_atomic(settings_file(jsonl), (json.dumps(_normalised(settings), indent=1) + "\n").encode(),
                     overwrite=True)
    except OSError as err:
        raise _unwritable(jsonl, err) from None
    return done


def _unwritable(jsonl: Path, err: OSError) -> ParameterError:
    """The one-line error of a per-frame results file that cannot be written (a full disk, a read-only folder)."""
    return ParameterError(f"cannot write the per-frame results {jsonl} ({err.strerror or err}); make room or give "
                          "a writable place, then run again: it resumes after the frames written so far")


@contextlib.contextmanager
def appending(jsonl: Path) -> Iterator[Callable[[dict], None]]:
    """Open per-frame results ``jsonl`` for appending; the function given appends one entry as one line and
    flushes it, so that an interrupted run keeps every entry written. A write that fails (a full disk) raises
    :func:`_unwritable`'s ParameterError in one line; the entries written before it stay in the file."""
    try:
        handle = jsonl.open("a")
    except OSError as err:
        raise _unwritable(jsonl, err) from None

    def append(entry: dict) -> None:
        try:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
        except OSError as err:
            raise _unwritable(jsonl, err) from None

    try:
        yield append
    finally:
        # each entry was flushed: only what a failed flush left (already raised) can fail again here
        with contextlib.suppress(OSError):
            handle.close()


def discard_stale(jsonl: Path, settings: dict) -> int:
    """For a run's own hidden per-frame file: delete ``jsonl`` and its settings file when they were written with
    other ``settings`` (:func:`resume_jsonl` would refuse them); how many lines were dropped (0: same settings, or
    no file). A file whose content does not fit is not deleted: :func:`resume_jsonl` refuses it."""
    try:
        _check_settings(jsonl, settings)
    except StaleResults as err:
        lines = len(jsonl.read_text(errors="replace").splitlines())
        log.info("discarding %d frame(s): %s", lines, err)
        remove_jsonl(jsonl)
        return lines
    return 0


def _check_settings(jsonl: Path, settings: dict) -> None:
    """:func:`resume_jsonl`'s check of the recorded settings, with no change to any file."""
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


def remove_jsonl(jsonl: Path) -> None:
    """Delete per-frame results ``jsonl`` and its settings file (once the final results are written)."""
    jsonl.unlink(missing_ok=True)
    settings_file(jsonl).unlink(missing_ok=True)


def read_done_frames(jsonl: Path, frame_size: tuple[int, int] | None = None) -> dict[int, dict]:
    """Frame results already written to a JSON Lines file (a torn last line is ignored). Every other line must
    be a result entry (:func:`entry_problem`; with ``frame_size``, (width, height) in pixels, one of a video's
    frames of that size), else :class:`~mtcnn_lab.errors.StaleResults` naming the line: the file is not per-frame
    results of this input and is left alone."""
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
        problem = entry_problem(entry, frame_size)
        if problem is not None:
            raise StaleResults(f"{jsonl} is not a per-frame results file of this video (line {number}: {problem}); "
                               "delete that file or give another path for the per-frame results")
        done[entry["frame"]] = entry
    return done


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_face(face: object) -> bool:
    """Whether ``face`` has the fields of :meth:`~mtcnn_lab.detections.Detections.faces`, of the right shapes."""
    if not isinstance(face, dict):
        return False
    boxes = [face.get(key) for key in ("bbox", "bbox_pre_correction", "onet_input_box")]
    landmarks = face.get("landmarks")
    return (_is_number(face.get("confidence"))
            and all(isinstance(box, list) and len(box) == 4 and all(map(_is_number, box)) for box in boxes)
            and isinstance(landmarks, list) and len(landmarks) == 5
            and all(isinstance(point, list) and len(point) == 2 and all(map(_is_number, point))
                    for point in landmarks))


def entry_problem(entry: object, frame_size: tuple[int, int] | None = None) -> str | None:
    """What makes ``entry`` (one line of per-frame results, parsed) not a result entry, in a few words; None
    when it is one: ``image`` (text), ``frame`` (an index), then ``width``, ``height`` and ``faces`` (each with
    the fields of :meth:`~mtcnn_lab.detections.Detections.faces`) or, for an image of a folder that could not be
    read, ``error`` (text). With ``frame_size`` (width, height) in pixels: a video frame of that size."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    if not (isinstance(entry.get("image"), str) and _is_count(entry.get("frame"))):
        return "no image name or frame index"
    if "error" in entry:
        if frame_size is not None:
            return "an error entry, which a video's frames never have"
        return None if isinstance(entry["error"], str) else "an error that is not text"
    if not (_is_count(entry.get("width")) and _is_count(entry.get("height"))):
        return "no frame size"
    if frame_size is not None and (entry["width"], entry["height"]) != tuple(frame_size):
        return (f"a frame of {entry['width']}x{entry['height']} pixels, the video's are "
                f"{frame_size[0]}x{frame_size[1]}")
    faces = entry.get("faces")
    if not (isinstance(faces, list) and all(map(_is_face, faces))):
        return "faces without the fields of detect's results"
    return None


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
