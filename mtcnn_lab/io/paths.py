"""Input paths: the suffixes read as images or videos, and the checks every input file gets (one-line
``InputError`` messages naming the file and the fix)."""

from __future__ import annotations

import os
from pathlib import Path

from mtcnn_lab.errors import InputError

PathLike = str | os.PathLike[str]


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


def show_path(path: str) -> str:
    """Quote a path for a one-line message (control characters are escaped)."""
    return f"'{path}'" if path.isprintable() else repr(path)


def path_text(path: object) -> str:
    """``path`` as a ``str``; InputError for anything that is not a path."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsdecode(path)
    raise InputError(
        f"expected a file path (str or pathlib.Path), got {type(path).__name__}; "
        "pass the path of an image or video file"
    )


def check_file(path: str) -> None:
    """Raise InputError unless ``path`` is an existing, non-empty, readable regular file with a UTF-8 name."""
    shown = show_path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        where = "" if os.path.isabs(path) else f" (relative to {show_path(os.getcwd())})"
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
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # OpenCV takes names as UTF-8 and crashes on these bytes
        raise InputError(f"{shown}: the file name is not valid UTF-8, which OpenCV cannot open; "
                         "rename the file") from None


def reencode_hint(path: str) -> str:
    """The fix for a video OpenCV cannot decode."""
    return f"check the file or re-encode it, e.g. ffmpeg -i {show_path(path)} -c:v libx264 out.mp4"


def suffix(path: str) -> str:
    """The file extension of ``path`` in lower case, with its dot (``.mp4``), or ``''``."""
    return Path(path).suffix.lower()


def is_video(path: PathLike) -> bool:
    """True when ``path`` has a video suffix (:data:`VIDEO_SUFFIXES`); the file is not opened."""
    return suffix(os.fsdecode(path)) in VIDEO_SUFFIXES
