"""The part of the manifest schema the runtime reads (``data/README.md``): the ``root`` folder and the
``videos`` it lists. Paths expand ``~`` and ``$VARS``; ``root`` is relative to the manifest's folder,
``videos`` (a glob, a path, ``{"path": ...}`` objects, or a list of them) to the root. The lab's full
reader (:mod:`mtcnn_lab.lab.dataset`) applies the same rules through these functions.
"""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.paths import VIDEO_SUFFIXES

__all__ = ["GLOB_CHARS", "expand_pattern", "manifest_videos", "resolve_path"]

GLOB_CHARS = re.compile(r"[*?\[]")
"""The characters that make a ``videos`` or ``items`` entry a glob."""


def resolve_path(text: str, base: Path) -> Path:
    """``text`` (``~`` and ``$VARS`` expanded) as an absolute, normalised path; relative to ``base``."""
    expanded = os.path.expandvars(os.path.expanduser(text))
    return Path(os.path.normpath(os.path.join(base, expanded)))


def expand_pattern(pattern: str, root: Path, suffixes: frozenset[str] | None = None) -> list[Path]:
    """The files a manifest entry names: for a glob, every matching file under ``root`` (recursive ``**``,
    sorted, only ``suffixes`` when given; possibly none); otherwise the one path, whether it exists or not."""
    if not GLOB_CHARS.search(pattern):
        return [resolve_path(pattern, root)]
    full = os.path.expandvars(os.path.expanduser(pattern))
    full = full if os.path.isabs(full) else os.path.join(glob.escape(str(root)), full)
    return [Path(os.path.normpath(p)) for p in sorted(glob.glob(full, recursive=True))
            if os.path.isfile(p) and (suffixes is None or Path(p).suffix.lower() in suffixes)]


def manifest_videos(manifest: Path) -> tuple[Path, list[Path] | None]:
    """``(root, videos)`` of a manifest JSON; ``videos`` is None when the manifest lists none. A one-line
    InputError for an unreadable manifest, a missing root, or a ``videos`` entry that names no file."""
    try:
        data = json.loads(Path(manifest).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:  # Recursion: nested too deep
        raise InputError(f"{manifest}: not a readable JSON manifest ({err}); see data/README.md") from None
    if not isinstance(data, dict) or not ({"root", "videos"} & set(data)) or not isinstance(data.get("root", "."), str):
        raise InputError(f"{manifest}: not a manifest (a JSON object with a 'root' folder and/or 'videos'); "
                         "see data/README.md")
    root = resolve_path(data.get("root", "."), Path(manifest).resolve().parent)
    if not root.is_dir():
        raise InputError(f"{manifest}: root folder {root} does not exist; fix 'root' in the manifest")
    spec = data.get("videos")
    if spec is None:
        return root, None
    entries = [spec] if isinstance(spec, (str, dict)) else spec
    if not isinstance(entries, list) or not all(isinstance(e, str) or (isinstance(e, dict) and isinstance(
            e.get("path"), str)) for e in entries):
        raise InputError(f"{manifest}: 'videos' must be a glob such as \"*.mp4\", a list of video paths or "
                         "{\"path\": ...} objects; see data/README.md")
    videos = []
    for entry in entries:
        pattern = entry if isinstance(entry, str) else entry["path"]
        found = [p for p in expand_pattern(pattern, root, VIDEO_SUFFIXES) if p.is_file()]
        if not found:
            raise InputError(f"{manifest}: 'videos' entry {pattern!r} names no video file under {root}; "
                             "fix the entry or the root")
        videos += found
    return root, sorted(dict.fromkeys(videos))
