"""Reading videos and choosing frames.

A video frame is what the decode profile's reader returns (:mod:`mtcnn_lab.io.decode.profiles`; by
default the pixels of OpenFace on OpenCV 4.6). Frame indices are **0-based, in decode order**,
counted over the frames that actually decode. Container headers can be wrong (OpenFace's
``changeLighting.wmv`` says 90 frames, 88 decode), so the header count is never used. Videos are always
read sequentially, never by seeking: seeking is inexact in many codecs and would give other pixels.
"""

from __future__ import annotations

import logging
import numbers
import operator
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from mtcnn_lab.checks import positive_int
from mtcnn_lab.errors import InputError
from mtcnn_lab.io.decode.probe import probe_video
from mtcnn_lab.io.decode.profiles import DecodeProfile, get_profile
from mtcnn_lab.io.decode.pyav_reader import PyAVReader
from mtcnn_lab.io.images import as_bgr_uint8
from mtcnn_lab.io.paths import PathLike, check_file, path_text, reencode_hint, show_path

log = logging.getLogger(__name__)

#: Where in a video frames are taken by default (fractions of the decodable length), as in the
#: reference set: frame ``int(p * n_frames)`` for each ``p``.
DEFAULT_POSITIONS: tuple[float, ...] = (0.2, 0.5, 0.8)


POSITIONS_EXAMPLE = "e.g. 0.2,0.5,0.8"


Decode = str | DecodeProfile | None
"""A decode profile, by name or itself; None: the default (:data:`~mtcnn_lab.io.decode.profiles.DEFAULT_DECODE`)."""


def open_video(path: str, decode_threads: int | None = None, decode: Decode = None) -> cv2.VideoCapture | PyAVReader:
    """A sequential reader of ``path`` for the decode profile ``decode`` (``grab``/``retrieve``/``release``)."""
    profile = get_profile(decode)
    if profile.reader == "pyav":
        return PyAVReader(path, profile, decode_threads)
    shown = show_path(path)
    try:
        if decode_threads is None:  # the decoder's own choice
            cap = cv2.VideoCapture(path)
        else:
            cap = cv2.VideoCapture(path, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, decode_threads])
        opened = cap.isOpened()
    except cv2.error:
        opened = False
    if not opened:
        raise InputError(
            f"cannot open video {shown} (corrupt file or a codec OpenCV's FFmpeg cannot read); "
            f"{reencode_hint(path)}"
        )
    return cap


def frame_time_s(reader: cv2.VideoCapture | PyAVReader) -> float | None:
    """Presentation time in seconds of the frame ``reader`` grabbed last (None: unknown)."""
    if isinstance(reader, PyAVReader):
        return reader.time_s()
    return reader.get(cv2.CAP_PROP_POS_MSEC) / 1000.0


def _no_frames_error(path: str) -> InputError:
    return InputError(f"video {show_path(path)} decodes 0 frames; {reencode_hint(path)}")


def count_frames(path: PathLike, decode: Decode = None) -> int:
    """Number of frames of a video that actually decode (a full sequential decode with ``grab``).

    The container's frame count is not used: it can be wrong. Raises InputError when the video
    cannot be opened or decodes no frame.
    """
    p = path_text(path)
    check_file(p)
    cap = open_video(p, decode=decode)
    n = 0
    try:
        while cap.grab():
            n += 1
    except cv2.error as err:  # a decoder failure ends the stream, as it does for VideoCapture.read
        log.info("video %s: decoding ends at frame %d (%s)", show_path(p), n, str(err).strip())
    finally:
        cap.release()
    if n == 0:
        raise _no_frames_error(p)
    warn_if_short(p, n)
    return n


SHORT_VIDEO = 0.9
"""A video whose decodable frames fall below this share of its header's frame count gets a warning."""


def warn_if_short(path: str, decoded: int) -> None:
    """Log a warning when far fewer frames of ``path`` decode than its header announces (truncated or damaged;
    the detections then cover only the decodable part, as OpenFace's would)."""
    try:
        header = probe_video(path).header_frames
    except InputError:
        return
    if header and decoded < SHORT_VIDEO * header:
        log.warning("video %s: only %d of the %d frames its header announces decode (truncated or damaged?); "
                    "%s", show_path(path), decoded, header, reencode_hint(path))


def _check_positions(positions: float | Iterable[float]) -> tuple[float, ...]:
    if isinstance(positions, numbers.Real):
        positions = (positions,)
    if isinstance(positions, (str, bytes)) or not isinstance(positions, Iterable):
        raise InputError(f"frame positions must be numbers in [0, 1], got {positions!r}; {POSITIONS_EXAMPLE}")
    out = []
    for p in positions:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
            raise InputError(
                f"frame position {p!r} is not a number in [0, 1]; give fractions of the video "
                f"length, {POSITIONS_EXAMPLE}"
            )
        out.append(float(p))
    if not out:
        raise InputError(f"no frame positions given; give at least one, {POSITIONS_EXAMPLE}")
    return tuple(out)


def check_every(every: object) -> int:
    """``every`` as a whole number >= 1; InputError otherwise."""
    try:
        if isinstance(every, bool):
            raise TypeError
        step = operator.index(every)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"every must be a whole number >= 1, got {every!r}; e.g. every=30") from None
    if step < 1:
        raise InputError(f"every must be >= 1, got {step}; e.g. every=30 for one frame in 30")
    return step


def check_selection(
    positions: float | Iterable[float] | None, every: int | None
) -> tuple[tuple[float, ...] | None, int | None]:
    """The frame selection checked: ``(positions, every)`` with at most one given; InputError in one line otherwise."""
    if positions is not None and every is not None:
        raise InputError("give either frame positions or every=N, not both")
    pos = None if positions is None else _check_positions(positions)
    step = None if every is None else check_every(every)
    return pos, step


def frame_indices(
    n_frames: int,
    positions: float | Iterable[float] | None = None,
    every: int | None = None,
) -> list[int]:
    """0-based indices of the frames to use from a video of ``n_frames`` decodable frames.

    * ``positions`` (fractions in [0, 1]): frame ``int(p * n_frames)``, clamped to
      ``n_frames - 1`` (so ``p = 1`` is the last frame);
    * ``every=N``: frames 0, N, 2N, ...;
    * neither: every frame.

    The result is sorted, without duplicates. Raises InputError when both are given, for a
    position outside [0, 1], for ``every < 1`` or for ``n_frames < 1``.
    """
    pos, step = check_selection(positions, every)
    try:
        if isinstance(n_frames, bool):
            raise TypeError
        n = operator.index(n_frames)
    except TypeError:
        raise InputError(f"n_frames must be a whole number, got {n_frames!r}") from None
    if n < 1:
        raise InputError(f"n_frames is {n}: a video needs at least 1 decodable frame")
    if pos is not None:
        return sorted({min(int(p * n), n - 1) for p in pos})
    return list(range(0, n, step or 1))


def _check_indices(indices: Iterable[int], path: str) -> list[int]:
    out = set()
    for i in indices:
        try:
            if isinstance(i, bool):
                raise TypeError
            k = operator.index(i)
        except TypeError:
            raise InputError(
                f"frame index {i!r} for {show_path(path)} is not a whole number; "
                "pass 0-based integer frame indices"
            ) from None
        if k < 0:
            raise InputError(
                f"frame index {k} for {show_path(path)} is negative; frame indices are 0-based "
                "(0 is the first frame)"
            )
        out.add(k)
    return sorted(out)


def decode_frames(
    cap: cv2.VideoCapture | PyAVReader, path: str, wanted: list[int] | None, step: int = 1
) -> Iterator[tuple[int, np.ndarray]]:
    """Read ``cap`` sequentially; yield ``(index, frame)`` for the wanted frames (None: every
    ``step``-th frame). Frames not wanted are only grabbed, which skips the colour conversion. The video
    ends at the first frame that does not decode, as OpenFace's reading does (logged as a warning)."""
    shown = show_path(path)
    try:
        if wanted is not None and not wanted:
            return
        j = 0  # next position in `wanted`
        i = 0  # index of the frame about to be decoded
        while True:
            want = (i % step == 0) if wanted is None else (i == wanted[j])
            try:
                ok = cap.grab()
                frame = None
                if ok and want:
                    ok, frame = cap.retrieve()
                    if not ok or frame is None:
                        raise InputError(
                            f"frame {i} of video {shown} could not be decoded; {reencode_hint(path)}"
                        )
            except cv2.error as err:
                log.info("video %s: decoding ends at frame %d (%s)", shown, i, str(err).strip())
                ok = False
            if not ok:
                break
            if want:
                yield i, as_bgr_uint8(frame, name=f"frame {i} of {shown}")
                if wanted is not None:
                    j += 1
                    if j == len(wanted):
                        return  # past the last wanted frame: stop decoding
            i += 1
        damaged = cap.damaged if isinstance(cap, PyAVReader) else None
        if damaged is not None:
            log.warning("video %s: decoding ends at frame %d, which is damaged (%s); OpenFace's reading of "
                        "the video ends there too", shown, i, damaged)
        if i == 0:
            if damaged is not None:
                raise InputError(f"video {shown}: its first frame is damaged ({damaged}) and OpenFace reads no "
                                 f"further; {reencode_hint(path)}")
            raise _no_frames_error(path)
        if wanted is None:
            warn_if_short(path, i)
        if wanted is not None:
            raise InputError(
                f"frame {wanted[j]} of video {shown} was requested, but only {i} frames decode "
                f"(indices 0..{i - 1}); ask for frames below {i}"
            )
    finally:
        cap.release()


def iter_video_frames(
    path: PathLike, indices: Iterable[int] | None = None, step: int = 1, decode_threads: int | None = None,
    decode: Decode = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for the frames ``indices`` (0-based, decode order) of a video.

    ``indices=None`` yields every ``step``-th frame (frames in between are only grabbed, which
    skips their colour conversion). The video is decoded sequentially from the start (no
    seeking), frames are yielded in increasing index order (duplicates once), and decoding stops
    after the last wanted frame. Each frame is BGR uint8 ``H×W×3``, as the decode profile ``decode``
    gives it (None: the default profile).

    The path is checked and the video opened when this is called, so those errors raise
    InputError at once. An index beyond the decodable frames raises InputError (with the number of
    decodable frames) during iteration, after the frames before it have been yielded.
    ``decode_threads`` sets FFmpeg's decoding threads (default: its own choice, one per CPU); one
    thread decodes a little slower but with less CPU time in all, which is better beside detection.
    """
    p = path_text(path)
    check_file(p)
    wanted = None if indices is None else _check_indices(indices, p)
    positive_int(decode_threads, "decode_threads", optional=True)
    profile = get_profile(decode)
    return decode_frames(open_video(p, decode_threads, profile), p, wanted, check_every(step))
