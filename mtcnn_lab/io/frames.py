"""Images and videos: reading, frame sampling and validation of inputs.

Conventions used throughout the package:

* An image is a numpy array of dtype ``uint8``, shape ``H×W×3``, channels in **BGR** order,
  C-contiguous: exactly what OpenFace gets from ``cv::imread(path, IMREAD_COLOR)``. 16-bit files
  become 8-bit (the high byte, as OpenCV's decoders do), gray files become 3 equal channels and an
  alpha channel is dropped.
* A video frame is what ``cv2.VideoCapture.read`` returns. Frame indices are **0-based, in decode
  order**, counted over the frames that actually decode. Container headers can be wrong
  (OpenFace's ``changeLighting.wmv`` says 90 frames, 88 decode), so the header count is never used.
* Videos are always read sequentially, never by seeking: seeking is inexact in many codecs and
  would give different pixels from a sequential read.

Every problem with an input raises :class:`mtcnn_lab.errors.InputError` with a one-line message
that names the file (or the array) and says how to fix it; OpenCV and numpy errors never escape.
"""

from __future__ import annotations

import numbers
import operator
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mtcnn_lab.checks import positive_int
from mtcnn_lab.errors import InputError

__all__ = [
    "DEFAULT_POSITIONS",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "InputItem",
    "as_bgr_uint8",
    "count_frames",
    "frame_indices",
    "is_video",
    "iter_inputs",
    "iter_video_frames",
    "read_image",
]

PathLike = str | os.PathLike[str]

#: Where in a video frames are taken by default (fractions of the decodable length), as in the
#: reference set: frame ``int(p * n_frames)`` for each ``p``.
DEFAULT_POSITIONS: tuple[float, ...] = (0.2, 0.5, 0.8)

#: File suffixes (lower case, with the dot) read as still images with ``cv2.imread``.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {
        ".bmp", ".dib", ".jpg", ".jpeg", ".jpe", ".jfif", ".jp2", ".png", ".webp", ".avif",
        ".gif", ".tif", ".tiff", ".pbm", ".pgm", ".ppm", ".pnm", ".pfm", ".sr", ".ras",
        ".hdr", ".pic", ".exr",
    }
)  # fmt: skip

#: File suffixes (lower case, with the dot) read as videos with ``cv2.VideoCapture``.
VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {
        ".avi", ".mp4", ".m4v", ".mov", ".mkv", ".wmv", ".asf", ".webm", ".mpg", ".mpeg",
        ".flv", ".3gp", ".ogv", ".mts", ".m2ts", ".ts", ".vob", ".mxf",
    }
)  # fmt: skip

_READ_EXAMPLE = "e.g. 0.2,0.5,0.8"


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _show(path: str) -> str:
    """Quote a path for a one-line message (control characters are escaped)."""
    return f"'{path}'" if path.isprintable() else repr(path)


def _fspath(path: object) -> str:
    """``path`` as a ``str``; InputError for anything that is not a path."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsdecode(path)
    raise InputError(
        f"expected a file path (str or pathlib.Path), got {type(path).__name__}; "
        "pass the path of an image or video file"
    )


def _check_file(path: str) -> None:
    """Raise InputError unless ``path`` is an existing, non-empty, readable regular file."""
    shown = _show(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        where = "" if os.path.isabs(path) else f" (relative to {_show(os.getcwd())})"
        raise InputError(f"{shown}: no such file{where}; check the path") from None
    except OSError as err:
        raise InputError(f"{shown}: cannot access the file ({err.strerror}); check the path") from None
    if os.path.isdir(path):
        raise InputError(
            f"{shown} is a directory, not an image or video; pass the files inside it "
            f"(e.g. {os.path.join(path, '*.jpg')})"
        )
    if not os.path.isfile(path):
        raise InputError(f"{shown} is not a regular file; pass an image or video file")
    if st.st_size == 0:
        raise InputError(f"{shown} is empty (0 bytes); copy or export the file again")
    if not os.access(path, os.R_OK):
        raise InputError(f"{shown}: permission denied; make the file readable")


def _reencode(path: str) -> str:
    """The fix for a video OpenCV cannot decode."""
    return f"check the file or re-encode it, e.g. ffmpeg -i {_show(path)} -c:v libx264 out.mp4"


def _suffix(path: str) -> str:
    return Path(path).suffix.lower()


def is_video(path: PathLike) -> bool:
    """True when ``path`` has a video suffix (:data:`VIDEO_SUFFIXES`); the file is not opened."""
    return _suffix(os.fsdecode(path)) in VIDEO_SUFFIXES


# A JPEG marker outside entropy-coded data: 0xFF (plus fill bytes) followed by anything but a
# stuffed zero, a restart marker or another 0xFF.
_JPEG_MARKER = re.compile(rb"\xff+[^\x00\xff\xd0-\xd7]")
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _jpeg_is_truncated(data: bytes) -> bool:
    """True when a JPEG stream ends before its end-of-image marker.

    libjpeg decodes a truncated file anyway (it fills the missing rows with gray and prints
    "Premature end of JPEG file"), which would silently give the detector a damaged image. The
    marker segments are walked from the start so that data appended after the image (thumbnails,
    multi-picture extensions) cannot hide a truncation. Anything that does not look like a JPEG
    returns False: the decoder decides.
    """
    n = len(data)
    if not data.startswith(b"\xff\xd8"):
        return False
    pos = 2
    while True:
        if pos >= n:
            return True
        if data[pos] != 0xFF:
            return False  # not a marker where one should be: leave the verdict to libjpeg
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            return True
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return False
        if marker in _JPEG_STANDALONE:
            continue
        if pos + 2 > n:
            return True
        pos += int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xDA:  # SOS: entropy-coded data follows until the next real marker
            match = _JPEG_MARKER.search(data, min(pos, n))
            if match is None:
                return True
            pos = match.start()


# --------------------------------------------------------------------------------------------
# arrays and images
# --------------------------------------------------------------------------------------------


def as_bgr_uint8(image: object, name: str = "image") -> np.ndarray:
    """Validate an array given to the detector and return it as BGR uint8 ``H×W×3``, C-contiguous.

    Accepted: ``uint8`` arrays of shape ``H×W×3`` (returned as is, or a C-contiguous copy),
    ``H×W`` or ``H×W×1`` gray (expanded to 3 equal channels, as ``cv2.imread`` does) and
    ``H×W×4`` BGRA (alpha dropped). Channel order cannot be checked: pass BGR, not RGB.
    Anything else raises InputError naming ``name``, the dtype and shape received and what to
    pass instead.
    """
    want = "pass a BGR uint8 array of shape H×W×3 (as cv2.imread returns)"
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name} must be a numpy.ndarray, got {type(image).__name__}; {want}")
    got = f"dtype {image.dtype}, shape {image.shape}"
    if image.ndim not in (2, 3):
        raise InputError(f"{name} has {image.ndim} dimensions ({got}); {want}")
    if image.size == 0:
        raise InputError(f"{name} is empty ({got}); {want}")
    if image.dtype != np.uint8:
        if image.dtype == np.uint16:
            fix = "convert it as cv2.imread does, e.g. (image >> 8).astype(np.uint8)"
        elif np.issubdtype(image.dtype, np.floating):
            fix = (
                "pass uint8 values 0..255, e.g. np.clip(image * 255, 0, 255).round()"
                ".astype(np.uint8) for values in [0, 1]"
            )
        else:
            fix = "convert it to uint8 0..255 as cv2.imread does"
        raise InputError(f"{name} has {got}; the detector needs uint8: {fix}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 3:
        return np.ascontiguousarray(image)
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return np.ascontiguousarray(image[:, :, :3])
    hint = ""
    if image.shape[0] in (1, 3, 4):
        hint = " (channels first? use image.transpose(1, 2, 0))"
    raise InputError(f"{name} has {channels} channels ({got}){hint}; {want}")


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as OpenFace does: ``cv2.imread(path, IMREAD_COLOR)``.

    Returns BGR uint8 ``H×W×3``, C-contiguous. Raises InputError for a missing path, a directory,
    an empty, truncated, corrupt or unsupported file, or a video file.
    """
    p = _fspath(path)
    _check_file(p)
    shown = _show(p)
    if is_video(p):
        raise InputError(
            f"{shown} is a video, not an image; read its frames with iter_video_frames() or iter_inputs()"
        )
    try:
        with open(p, "rb") as f:
            data = f.read()
    except OSError as err:
        raise InputError(f"{shown}: cannot read the file ({err.strerror}); check the path") from None
    if _jpeg_is_truncated(data):
        raise InputError(
            f"{shown} is a truncated JPEG (the data ends before the end-of-image marker); "
            "copy or download the complete file again"
        )
    image = None
    try:
        image = cv2.imread(p, cv2.IMREAD_COLOR)
        if image is None:  # e.g. a path OpenCV cannot open (non-ASCII on Windows)
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        raise InputError(
            f"cannot decode {shown} as an image (corrupt file or unsupported format); "
            "export it again as JPEG or PNG"
        )
    return as_bgr_uint8(image, name=shown)


# --------------------------------------------------------------------------------------------
# videos
# --------------------------------------------------------------------------------------------


def _open_video(path: str, decode_threads: int | None = None) -> cv2.VideoCapture:
    shown = _show(path)
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
            f"{_reencode(path)}"
        )
    return cap


def _no_frames(path: str) -> InputError:
    return InputError(f"video {_show(path)} decodes 0 frames; {_reencode(path)}")


def count_frames(path: PathLike) -> int:
    """Number of frames of a video that actually decode (a full sequential decode with ``grab``).

    The container's frame count is not used: it can be wrong. Raises InputError when the video
    cannot be opened or decodes no frame.
    """
    p = _fspath(path)
    _check_file(p)
    cap = _open_video(p)
    n = 0
    try:
        while cap.grab():
            n += 1
    except cv2.error:
        pass  # a decoder failure ends the stream, as it does for VideoCapture.read
    finally:
        cap.release()
    if n == 0:
        raise _no_frames(p)
    return n


def _check_positions(positions: float | Iterable[float]) -> tuple[float, ...]:
    if isinstance(positions, numbers.Real):
        positions = (positions,)
    if isinstance(positions, (str, bytes)) or not isinstance(positions, Iterable):
        raise InputError(f"frame positions must be numbers in [0, 1], got {positions!r}; {_READ_EXAMPLE}")
    out = []
    for p in positions:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
            raise InputError(
                f"frame position {p!r} is not a number in [0, 1]; give fractions of the video "
                f"length, {_READ_EXAMPLE}"
            )
        out.append(float(p))
    if not out:
        raise InputError(f"no frame positions given; give at least one, {_READ_EXAMPLE}")
    return tuple(out)


def _check_every(every: object) -> int:
    try:
        if isinstance(every, bool):
            raise TypeError
        step = operator.index(every)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"every must be a whole number >= 1, got {every!r}; e.g. every=30") from None
    if step < 1:
        raise InputError(f"every must be >= 1, got {step}; e.g. every=30 for one frame in 30")
    return step


def _check_selection(
    positions: float | Iterable[float] | None, every: int | None
) -> tuple[tuple[float, ...] | None, int | None]:
    if positions is not None and every is not None:
        raise InputError("give either frame positions or every=N, not both")
    pos = None if positions is None else _check_positions(positions)
    step = None if every is None else _check_every(every)
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
    pos, step = _check_selection(positions, every)
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
                f"frame index {i!r} for {_show(path)} is not a whole number; "
                "pass 0-based integer frame indices"
            ) from None
        if k < 0:
            raise InputError(
                f"frame index {k} for {_show(path)} is negative; frame indices are 0-based "
                "(0 is the first frame)"
            )
        out.add(k)
    return sorted(out)


def _decode(
    cap: cv2.VideoCapture, path: str, wanted: list[int] | None, step: int = 1
) -> Iterator[tuple[int, np.ndarray]]:
    """Read ``cap`` sequentially; yield ``(index, frame)`` for the wanted frames (None: every
    ``step``-th frame). Frames not wanted are only grabbed, which skips the colour conversion."""
    shown = _show(path)
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
                            f"frame {i} of video {shown} could not be decoded; {_reencode(path)}"
                        )
            except cv2.error:
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
        if i == 0:
            raise _no_frames(path)
        if wanted is not None:
            raise InputError(
                f"frame {wanted[j]} of video {shown} was requested, but only {i} frames decode "
                f"(indices 0..{i - 1}); ask for frames below {i}"
            )
    finally:
        cap.release()


def iter_video_frames(
    path: PathLike, indices: Iterable[int] | None = None, step: int = 1, decode_threads: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for the frames ``indices`` (0-based, decode order) of a video.

    ``indices=None`` yields every ``step``-th frame (frames in between are only grabbed, which
    skips their colour conversion). The video is decoded sequentially from the start (no
    seeking), frames are yielded in increasing index order (duplicates once), and decoding stops
    after the last wanted frame. Each frame is BGR uint8 ``H×W×3``, as ``VideoCapture.read``
    returns it.

    The path is checked and the video opened when this is called, so those errors raise
    InputError at once. An index beyond the decodable frames raises InputError (with the number of
    decodable frames) during iteration, after the frames before it have been yielded.
    ``decode_threads`` sets FFmpeg's decoding threads (default: its own choice, one per CPU); one
    thread decodes a little slower but with less CPU time in all, which is better beside detection.
    """
    p = _fspath(path)
    _check_file(p)
    wanted = None if indices is None else _check_indices(indices, p)
    positive_int(decode_threads, "decode_threads", optional=True)
    return _decode(_open_video(p, decode_threads), p, wanted, _check_every(step))


# --------------------------------------------------------------------------------------------
# many inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class InputItem:
    """One image to run the detector on, or the error that stopped an input.

    ``path`` is the path as given; ``frame`` is the 0-based frame index for a video frame and
    ``None`` for a still image; ``image`` is BGR uint8 ``H×W×3`` (``None`` when ``error`` is set);
    ``error`` is the one-line InputError message for an input that could not be read.
    """

    path: str
    frame: int | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the item holds an image, False when it holds an error."""
        return self.error is None


def _items_for(path: str, positions: tuple[float, ...] | None, step: int | None) -> Iterator[InputItem]:
    _check_file(path)
    suffix = _suffix(path)
    if suffix not in VIDEO_SUFFIXES:
        if suffix in IMAGE_SUFFIXES:
            yield InputItem(path, None, read_image(path), None)
            return
        # unknown suffix: an image if OpenCV can decode it as one, else try it as a video
        try:
            image = read_image(path)
        except InputError:
            try:
                _open_video(path).release()
            except InputError:
                raise InputError(
                    f"{_show(path)} is neither a readable image nor a readable video; pass an "
                    "image (JPEG, PNG, ...) or a video OpenCV can decode (AVI, MP4, WMV, ...)"
                ) from None
        else:
            yield InputItem(path, None, image, None)
            return
    if step is not None:
        frames = _decode(_open_video(path), path, None, step)
    else:
        wanted = frame_indices(count_frames(path), positions or DEFAULT_POSITIONS)
        frames = iter_video_frames(path, wanted)
    for index, frame in frames:
        yield InputItem(path, index, frame, None)


def iter_inputs(
    paths: PathLike | Iterable[PathLike],
    positions: float | Sequence[float] | None = None,
    every: int | None = None,
) -> Iterator[InputItem]:
    """Yield an :class:`InputItem` per image and per selected video frame, path by path.

    A still image gives one item (``frame=None``). A video gives one item per selected frame:
    ``positions`` (fractions of the decodable length, see :func:`frame_indices`), ``every=N``
    (frames 0, N, 2N, ...), or, when neither is given, :data:`DEFAULT_POSITIONS`. Positions need
    the number of decodable frames, so such a video is decoded once to count and once more up to
    the last selected frame; ``every`` needs a single pass.

    A path that cannot be read gives one item with ``error`` set instead of raising, so the other
    paths are still processed (a video that fails midway gives its frames so far, then the error).
    Invalid ``positions``/``every`` raise InputError at once.
    """
    pos, step = _check_selection(positions, every)
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    return _iter_inputs(paths, pos, step)


def _iter_inputs(
    paths: Iterable[object], positions: tuple[float, ...] | None, step: int | None
) -> Iterator[InputItem]:
    for raw in paths:
        shown = os.fsdecode(raw) if isinstance(raw, (str, bytes, os.PathLike)) else repr(raw)
        try:
            p = _fspath(raw)
            yield from _items_for(p, positions, step)
        except InputError as err:
            yield InputItem(shown, None, None, str(err))
