"""Inputs of the ``detect`` command: images and the chosen frames of videos, one :class:`InputItem` each,
with a readable input's pixels or an unreadable one's one-line error."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.decode.profiles import get_profile
from mtcnn_lab.io.images import read_image
from mtcnn_lab.io.paths import IMAGE_SUFFIXES, VIDEO_SUFFIXES, PathLike, check_file, path_text, show_path, suffix
from mtcnn_lab.io.videos import (
    DEFAULT_POSITIONS,
    Decode,
    check_selection,
    count_frames,
    decode_frames,
    frame_indices,
    iter_video_frames,
    open_video,
)


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


def _items_for(path: str, positions: tuple[float, ...] | None, step: int | None,
               decode: Decode) -> Iterator[InputItem]:
    check_file(path)
    kind = suffix(path)
    if kind not in VIDEO_SUFFIXES:
        if kind in IMAGE_SUFFIXES:
            yield InputItem(path, None, read_image(path), None)
            return
        # unknown suffix: an image if OpenCV can decode it as one, else try it as a video
        try:
            image = read_image(path)
        except InputError:
            try:
                open_video(path, decode=decode).release()
            except InputError:
                raise InputError(
                    f"{show_path(path)} is neither a readable image nor a readable video; pass an "
                    "image (JPEG, PNG, ...) or a video OpenCV can decode (AVI, MP4, WMV, ...)"
                ) from None
        else:
            yield InputItem(path, None, image, None)
            return
    if step is not None:
        frames = decode_frames(open_video(path, decode=decode), path, None, step)
    else:
        wanted = frame_indices(count_frames(path, decode), positions or DEFAULT_POSITIONS)
        frames = iter_video_frames(path, wanted, decode=decode)
    for index, frame in frames:
        yield InputItem(path, index, frame, None)


def iter_inputs(
    paths: PathLike | Iterable[PathLike],
    positions: float | Sequence[float] | None = None,
    every: int | None = None,
    decode: Decode = None,
) -> Iterator[InputItem]:
    """Yield an :class:`InputItem` per image and per selected video frame, path by path.

    A still image gives one item (``frame=None``). A video gives one item per selected frame:
    ``positions`` (fractions of the decodable length, see :func:`frame_indices`), ``every=N``
    (frames 0, N, 2N, ...), or, when neither is given, :data:`DEFAULT_POSITIONS`. Positions need
    the number of decodable frames, so such a video is decoded once to count and once more up to
    the last selected frame; ``every`` needs a single pass. Videos are decoded with the decode profile
    ``decode`` (None: the default).

    A path that cannot be read gives one item with ``error`` set instead of raising, so the other
    paths are still processed (a video that fails midway gives its frames so far, then the error).
    Invalid ``positions``/``every`` raise InputError at once.
    """
    pos, step = check_selection(positions, every)
    profile = get_profile(decode)
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    return _iter_inputs(paths, pos, step, profile)


def _iter_inputs(
    paths: Iterable[object], positions: tuple[float, ...] | None, step: int | None, decode: Decode
) -> Iterator[InputItem]:
    for raw in paths:
        shown = os.fsdecode(raw) if isinstance(raw, (str, bytes, os.PathLike)) else repr(raw)
        try:
            p = path_text(raw)
            yield from _items_for(p, positions, step, decode)
        except InputError as err:
            yield InputItem(shown, None, None, str(err))
