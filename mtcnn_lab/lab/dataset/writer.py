"""Writing a manifest for a folder of videos (``mtcnn-lab manifest write``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from mtcnn_lab.errors import InputError, OutputExists
from mtcnn_lab.files import write_json
from mtcnn_lab.io.paths import IMAGE_SUFFIXES, VIDEO_SUFFIXES, PathLike
from mtcnn_lab.io.videos import DEFAULT_POSITIONS, frame_indices
from mtcnn_lab.lab.dataset.common import quoted
from mtcnn_lab.lab.dataset.manifest import probe_video
from mtcnn_lab.lab.dataset.reference import load_reference


def _manifest_relative_path(target: Path, base: Path) -> str:
    """``target`` relative to ``base`` when it lies inside it, else absolute (POSIX separators)."""
    try:
        rel = target.relative_to(base).as_posix()
    except ValueError:
        return target.as_posix()
    return rel or "."


def write_manifest_for_folder(
    folder: PathLike,
    out: PathLike,
    positions: Iterable[float] = DEFAULT_POSITIONS,
    reference: PathLike | None = None,
    *,
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a manifest for the videos (and still images) directly in ``folder``; return its path.

    Each video is decoded once to count its frames; the count, size in bytes and frame size are
    stored so that loading the manifest needs no decode (a video whose size changed is recounted).
    Frames are taken at ``positions``. ``reference`` is a JSON of C++ results whose ``image``
    paths are relative to ``folder`` (``"image": "p01.mp4", "frame": 140``). Paths inside the
    manifest's folder are written relative to it, others absolute.
    """
    folder_p = Path(os.path.abspath(os.path.expanduser(os.fspath(folder))))
    out_p = Path(os.path.abspath(os.path.expanduser(os.fspath(out))))
    if not folder_p.is_dir():
        what = "is not a folder" if folder_p.exists() else "does not exist"
        raise InputError(f"video folder {quoted(folder_p)} {what}; pass the folder that holds the videos")
    if out_p.is_dir():
        raise InputError(f"{quoted(out_p)} is a directory; give a file path for the manifest, "
                         f"e.g. {quoted(out_p / 'manifest.json')}")
    if out_p.exists() and not overwrite:
        raise InputError(f"{quoted(out_p)} already exists; pass overwrite=True (--overwrite) or choose another path")
    pos = list(positions) if not isinstance(positions, (int, float)) else [positions]
    try:
        frame_indices(1, pos)
    except InputError as err:
        raise InputError(f"positions for {quoted(out_p)}: {err}") from None
    files = sorted(p for p in folder_p.iterdir() if p.is_file())
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not videos and not images:
        raise InputError(f"{quoted(folder_p)} holds no video ({', '.join(sorted(VIDEO_SUFFIXES)[:6])}, ...) or image; "
                         "pass the folder that holds them")
    base = out_p.parent
    entries = []
    for video in videos:
        n, width, height = probe_video(video)
        entries.append({"path": video.name, "n_frames": n, "bytes": video.stat().st_size,
                        "width": width, "height": height})
    data: dict = {
        "name": name or folder_p.name,
        "description": f"videos in {folder_p.name}/, frames at {', '.join(f'{p:g}' for p in pos)} of their length",
        "root": _manifest_relative_path(folder_p, base),
    }
    if reference is not None:
        ref_p = Path(os.path.abspath(os.path.expanduser(os.fspath(reference))))
        if not ref_p.is_file():
            raise InputError(f"reference {quoted(ref_p)} not found; pass the JSON of C++ results (or leave it out)")
        load_reference(ref_p, folder_p, quoted(out_p))  # fail now, not when the manifest is loaded
        data["reference"] = _manifest_relative_path(ref_p, base)
    data["positions"] = [float(p) for p in pos]
    if videos:
        data["videos"] = entries
    if images:
        data["items"] = [p.name for p in images]
    try:
        write_json(out_p, data, overwrite=overwrite)
    except OutputExists:
        raise InputError(f"{quoted(out_p)} already exists; pass overwrite=True (--overwrite) or choose another path") \
            from None
    except OSError as err:
        raise InputError(f"cannot write {quoted(out_p)} ({err.strerror or err}); choose a writable folder") from None
    return out_p
