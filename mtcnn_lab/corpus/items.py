"""A corpus's items: every video below a folder (or a manifest's), each folder of still images, and the
name of each item's result file (the package docstring, :mod:`mtcnn_lab.corpus`, tells the whole story)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.manifests import manifest_videos
from mtcnn_lab.io.paths import IMAGE_SUFFIXES, VIDEO_SUFFIXES, PathLike

__all__ = ["find_corpus", "output_name", "csv_name"]


def _image_folders_and_videos(root: Path) -> list[Path]:
    items: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        names = sorted(f for f in files if not f.startswith("."))
        items += [Path(folder) / f for f in names if Path(f).suffix.lower() in VIDEO_SUFFIXES]
        if any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in names):
            items.append(Path(folder))
    return sorted(items)


def _from_manifest(manifest: Path) -> list[Path]:
    """The videos a manifest lists, or every item under its root when it lists none."""
    root, videos = manifest_videos(manifest)
    return _image_folders_and_videos(root) if videos is None else videos


def find_corpus(dir_or_manifest: PathLike) -> list[Path]:
    """The items of a corpus, sorted: every video (by suffix) below a folder, searched recursively
    (hidden names skipped), plus each folder that holds still images as one item; or the videos of
    a manifest JSON (its ``root`` folder scanned when it lists no ``videos``)."""
    source = Path(dir_or_manifest)
    if source.is_dir():
        items = _image_folders_and_videos(source)
    elif source.is_file() and source.suffix.lower() == ".json":
        items = _from_manifest(source)
    elif source.exists():
        raise InputError(f"{source}: give a folder of videos/images or a manifest .json")
    else:
        raise InputError(f"{source}: no such folder or manifest; check the path")
    if not items:
        raise InputError(f"{source}: no videos ({', '.join(sorted(VIDEO_SUFFIXES)[:4])}, ...) or images found")
    return items


def output_name(item: PathLike, root: PathLike | None = None) -> str:
    """The result file name of an item: its path relative to ``root`` with ``/`` as ``__``, plus
    ``.json`` (``clips/a.avi`` -> ``clips__a.avi.json``; the suffix keeps ``a.avi`` and ``a.mp4``
    apart). The path is taken as found under ``root`` (a symlink by its own name), else with both
    resolved, else the item's own name."""
    item = Path(item)
    rel = item.name
    if root is not None:
        for path, base in ((os.path.abspath(item), os.path.abspath(root)),
                           (os.path.realpath(item), os.path.realpath(root))):  # realpath: no error on a link loop
            with contextlib.suppress(ValueError):
                rel = Path(path).relative_to(base).as_posix()
                break
    rel = rel if rel not in ("", ".") else (Path(os.path.realpath(item)).name or "root")
    return rel.replace("/", "__") + ".json"


def csv_name(name: str) -> str:
    """The per-frame face table beside result file ``name`` (``clips__a.avi.json`` -> ``clips__a.avi.csv``)."""
    return name.removesuffix(".json") + ".csv"
