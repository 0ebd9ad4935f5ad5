"""What the manifest modules share: the default manifest, the field names, path and number helpers."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.paths import show_path
from mtcnn_lab.lab.project import PROJECT_MANIFEST, find_project

#: The repository's manifest (OpenFace's samples and C++ reference in ``../shared``), relative to the
#: project folder (:func:`~mtcnn_lab.lab.project.find_project`: the working directory or the nearest folder
#: above it that holds it, so notebooks started in ``notebooks/`` find it too).
DEFAULT_MANIFEST: Path = PROJECT_MANIFEST


#: Environment variable that replaces :data:`DEFAULT_MANIFEST` (an explicit path still wins).
MANIFEST_ENV = "MTCNN_LAB_MANIFEST"


#: ``"items"`` value meaning: one item per entry of the reference JSON.
ALL_IN_REFERENCE = "all-in-reference"


#: Group of the still images directly in the root folder.
STILLS_GROUP = "stills"


#: Default folder (relative to a video's folder) of pre-extracted frames ``<stem>_f<index>.png``.
DEFAULT_FRAMES_DIR = "frames"

REFERENCE_DECODE = "opencv-python"
"""The decode profile of the dataset's video frames: the C++ reference's ``frames/`` PNGs were cut by
opencv-python (``data/README.md``), so its frames are decoded the same way."""


MANIFEST_KEYS = ("name", "description", "root", "reference", "items", "videos", "positions", "frames_dir")


VIDEO_KEYS = ("path", "positions", "frames", "n_frames", "bytes", "width", "height", "group")


ITEM_KEYS = ("image", "frame", "group")


PNG_FRAME = re.compile(r"^(?P<stem>.+)_f(?P<index>\d+)\.png$")




README_HINT = "see data/README.md"


HOW_TO_POINT = (f"point the workbench at your own data with {MANIFEST_ENV}=/path/manifest.json "
                 "(write one with: mtcnn-lab manifest write VIDEO_FOLDER manifest.json)")


def quoted(path: object) -> str:
    """Quote a path (or any value) for a one-line message: :func:`~mtcnn_lab.io.paths.show_path` of its text."""
    return show_path(os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path))


def path_key(path: Path) -> str:
    """A path identity for matching reference entries (symlinks resolved, case folded on Windows)."""
    return os.path.normcase(os.path.realpath(path))


def relative_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, or the absolute path when it is outside."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def shared_hint(missing: Path) -> str:
    """Why a path under a ``shared`` folder is missing: the folder beside the checkout is absent."""
    for folder in missing.parents:
        if folder.name == "shared":
            if not folder.is_dir():
                return (f" (the OpenFace samples and C++ reference live in {quoted(folder)}, the shared/ folder beside "
                        "the checkout, which is not present here)")
            return f" ({quoted(folder)} exists but lacks it)"
    return ""


def is_int(value: object) -> bool:
    """Whether a JSON value is a whole number (``True``/``False`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """Whether a JSON value is an int or float (``True``/``False`` are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_json(path: Path, what: str, fix: str) -> object:
    """Parse a JSON file; every failure is a one-line InputError naming ``path``."""
    shown = quoted(path)
    if not path.exists():
        raise InputError(f"{what} {shown} not found; {fix}")
    if path.is_dir():
        raise InputError(f"{what} {shown} is a directory, not a JSON file; {fix}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} {shown} is not UTF-8 text; save it as UTF-8 JSON ({README_HINT})") from None
    except OSError as err:
        raise InputError(f"{what} {shown}: cannot read the file ({err.strerror or err}); check the path") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{what} {shown} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); "
                         f"fix the file ({README_HINT})") from None


def default_manifest() -> Path:
    """``$MTCNN_LAB_MANIFEST`` when set (and not empty), else the project's :data:`DEFAULT_MANIFEST`, found
    from the working directory upwards (InputError in one line, naming where it looked, when there is none)."""
    env = os.environ.get(MANIFEST_ENV, "").strip()
    return Path(os.path.expanduser(env)) if env else find_project() / DEFAULT_MANIFEST
