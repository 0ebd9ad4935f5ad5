"""Reading a manifest (``data/manifest.json`` and the user's own, see ``data/README.md``) into a
:class:`~mtcnn_lab.lab.dataset.items.Dataset`, with one-line errors that name the field and the fix."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.manifests import GLOB_CHARS, expand_pattern, resolve_path
from mtcnn_lab.io.paths import IMAGE_SUFFIXES, VIDEO_SUFFIXES, PathLike
from mtcnn_lab.io.videos import DEFAULT_POSITIONS, count_frames, frame_indices, iter_video_frames
from mtcnn_lab.lab.dataset.common import (
    ALL_IN_REFERENCE,
    DEFAULT_FRAMES_DIR,
    HOW_TO_POINT,
    ITEM_KEYS,
    MANIFEST_ENV,
    MANIFEST_KEYS,
    PNG_FRAME,
    README_HINT,
    REFERENCE_DECODE,
    STILLS_GROUP,
    VIDEO_KEYS,
    default_manifest,
    is_int,
    path_key,
    quoted,
    read_json,
    relative_path,
    shared_hint,
)
from mtcnn_lab.lab.dataset.items import Dataset, EvalItem
from mtcnn_lab.lab.dataset.reference import load_reference

_PROBES: dict[tuple[str, int, int], tuple[int, int, int]] = {}


def probe_video(path: Path) -> tuple[int, int, int]:
    """``(decodable frames, width, height)`` of a video; cached per file version in this process."""
    st = path.stat()
    cache_key = (path_key(path), st.st_size, st.st_mtime_ns)
    if cache_key not in _PROBES:
        n = count_frames(path, REFERENCE_DECODE)
        _, first = next(iter_video_frames(path, [0], decode=REFERENCE_DECODE))
        _PROBES[cache_key] = (n, first.shape[1], first.shape[0])
    return _PROBES[cache_key]


@dataclass
class _VideoEntry:
    path: Path
    positions: tuple[float, ...]
    frames: list[int] | None = None
    n_frames: int | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    group: str | None = None


def _check_positions_field(value: object, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: \"positions\" must be a list of fractions in [0, 1], e.g. [0.2, 0.5, 0.8]")
    try:
        frame_indices(1, value)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    return tuple(float(p) for p in value)


class _ManifestBuilder:
    """Reads one manifest; every error names the manifest."""

    def __init__(self, manifest: Path) -> None:
        self.manifest = manifest
        self.shown = quoted(manifest)
        self.base = manifest.parent
        self.notes: list[str] = []

    def error(self, message: str) -> InputError:
        return InputError(f"manifest {self.shown}: {message}")

    # --- top level --------------------------------------------------------------------------

    def build(self) -> Dataset:
        data = read_json(self.manifest, "manifest", f"check the path, or {HOW_TO_POINT}")
        if not isinstance(data, dict):
            raise self.error('must be a JSON object such as {"root": "videos", "videos": "*.mp4"}; ' + README_HINT)
        unknown = [k for k in data if k not in MANIFEST_KEYS and not k.startswith("_")]
        if unknown:
            raise self.error(f"unknown key {unknown[0]!r}; the keys are {', '.join(MANIFEST_KEYS)} "
                             f"(keys starting with _ are comments)")
        name = data.get("name", self.manifest.stem if self.manifest.stem != "manifest" else self.base.name)
        if not isinstance(name, str) or not name:
            raise self.error("\"name\" must be a non-empty string")

        root_text = data.get("root", ".")
        if not isinstance(root_text, str) or not root_text:
            raise self.error("\"root\" must be a folder path (relative to the manifest's folder or absolute)")
        self.root = root = resolve_path(root_text, self.base)
        if not root.is_dir():
            what = "is not a folder" if root.exists() else "does not exist"
            hint = shared_hint(root)
            raise self.error(f"root {quoted(root_text)} ({quoted(root)}) {what}{hint}; fix \"root\" or {HOW_TO_POINT}")

        self.positions = _check_positions_field(data["positions"], f"manifest {self.shown}") if "positions" in data \
            else tuple(DEFAULT_POSITIONS)
        frames_dir = data.get("frames_dir", DEFAULT_FRAMES_DIR)
        if frames_dir is not None and (not isinstance(frames_dir, str) or not frames_dir):
            raise self.error("\"frames_dir\" must be a folder name (relative to each video's folder) or null")
        self.frames_dir = frames_dir

        reference = None
        if data.get("reference") is not None:
            if not isinstance(data["reference"], str) or not data["reference"]:
                raise self.error("\"reference\" must be the path of a JSON of C++ results, or null")
            ref_path = resolve_path(data["reference"], self.base)
            if not ref_path.is_file():
                hint = shared_hint(ref_path)
                raise InputError(
                    f"manifest {self.shown}: reference {quoted(data['reference'])} ({quoted(ref_path)}) "
                    f"not found{hint}; "
                    f"fix \"reference\", remove it (items then have no C++ faces) or {HOW_TO_POINT}")
            reference = load_reference(ref_path, root, self.shown)
            if reference.skipped:
                self.notes.append(f"{reference.skipped} reference entries have an \"error\" and no faces; skipped")
        self.reference = reference

        videos = self.parse_videos(data.get("videos"))
        self.videos_by_key = {path_key(v.path): v for v in videos}
        items: dict[str, EvalItem] = {}

        def add(item: EvalItem) -> None:
            items.setdefault(item.id, item)

        spec = data.get("items")
        if spec == ALL_IN_REFERENCE:
            if reference is None:
                raise self.error(f"\"items\": {ALL_IN_REFERENCE!r} needs a \"reference\"; add one or list the items")
            for entry in reference.entries:
                add(self.item_from_entry(entry))
        elif isinstance(spec, list):
            for n, one in enumerate(spec):
                for item in self.items_from_spec(one, f"items[{n}]"):
                    add(item)
        elif spec is not None:
            raise self.error(f"\"items\" must be {ALL_IN_REFERENCE!r} or a list of paths (globs, \"video.mp4#140\") "
                             f"or {{\"image\", \"frame\", \"group\"}} objects; {README_HINT}")
        for video in videos:
            for item in self.video_items(video):
                add(item)
        if not items:
            raise self.error(f"lists nothing to evaluate; add \"videos\" (e.g. \"*.mp4\") or \"items\"; {README_HINT}")
        out = tuple(self.attach(item) for item in _cluster_videos(items.values()))
        return Dataset(name=name, items=out, reference_meta=reference.meta if reference else None,
                       manifest=self.manifest, root=root, reference=reference.path if reference else None,
                       notes=tuple(self.notes))

    # --- videos ----------------------------------------------------------------------------

    def expand(self, pattern: str, where: str, suffixes: frozenset[str] | None) -> list[Path]:
        """Files matching a glob under the root (sorted), or the one file named; error if none."""
        if GLOB_CHARS.search(pattern):
            found = expand_pattern(pattern, self.root, suffixes)
            if not found:
                kind = "video" if suffixes is VIDEO_SUFFIXES else "image or video"
                raise self.error(f"{where} {quoted(pattern)} matches no {kind} file under root {quoted(self.root)}; "
                                 "fix the pattern or the root")
            return found
        path = resolve_path(pattern, self.root)
        if not path.is_file():
            what = "is not a file" if path.exists() else "not found"
            raise self.error(f"{where} {quoted(pattern)} ({quoted(path)}) {what}; fix the name, the root, or remove it")
        return [path]

    def parse_videos(self, spec: object) -> list[_VideoEntry]:
        if spec is None:
            return []
        entries = [spec] if isinstance(spec, (str, dict)) else spec
        if not isinstance(entries, list):
            raise self.error(f"\"videos\" must be a glob such as \"*.mp4\", a list of video paths or "
                             f"{{\"path\": ...}} objects; {README_HINT}")
        out: dict[str, _VideoEntry] = {}
        for n, entry in enumerate(entries):
            where = f"videos[{n}]"
            if isinstance(entry, str) and entry:
                for path in self.expand(entry, f"video {where}", VIDEO_SUFFIXES):
                    out.setdefault(path_key(path), _VideoEntry(path, self.positions))
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
                raise self.error(f"{where} must be a path, a glob or an object with a \"path\"; {README_HINT}")
            unknown = [k for k in entry if k not in VIDEO_KEYS and not k.startswith("_")]
            if unknown:
                raise self.error(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(VIDEO_KEYS)}")
            positions = (_check_positions_field(entry["positions"], f"manifest {self.shown}, {where}")
                         if "positions" in entry else self.positions)
            frames = entry.get("frames")
            if frames is not None and (not isinstance(frames, list) or not frames
                                       or not all(is_int(k) and k >= 0 for k in frames)):
                raise self.error(f"{where}: \"frames\" must be a list of 0-based frame indices, e.g. [0, 30, 60]")
            if frames is not None and "positions" in entry:
                raise self.error(f"{where}: give \"positions\" or \"frames\", not both")
            for k in ("n_frames", "bytes", "width", "height"):
                if entry.get(k) is not None and (not is_int(entry[k]) or entry[k] < 1):
                    raise self.error(f"{where}: \"{k}\" must be a positive whole number (or leave it out)")
            if entry.get("group") is not None and (not isinstance(entry["group"], str) or not entry["group"]):
                raise self.error(f"{where}: \"group\" must be a non-empty string")
            for path in self.expand(entry["path"], f"video {where}", VIDEO_SUFFIXES):
                out.setdefault(path_key(path), _VideoEntry(
                    path, positions, sorted(set(frames)) if frames is not None else None,
                    entry.get("n_frames"), entry.get("bytes"), entry.get("width"), entry.get("height"),
                    entry.get("group")))
        return list(out.values())

    def video_group(self, video: Path) -> str:
        known = self.videos_by_key.get(path_key(video))
        if known is not None and known.group:
            return known.group
        rel = relative_path(video.with_suffix(""), self.root)
        return rel if not os.path.isabs(rel) else video.stem

    def frame_png(self, video: Path, index: int) -> Path | None:
        """The pre-extracted PNG of a frame when the manifest's frames folder holds one."""
        if self.frames_dir is None:
            return None
        png = resolve_path(self.frames_dir, video.parent) / f"{video.stem}_f{index}.png"
        return png if png.is_file() else None

    def frame_item(self, video: Path, index: int, group: str | None = None) -> EvalItem:
        known = self.videos_by_key.get(path_key(video))
        return EvalItem(
            id=f"{relative_path(video, self.root)}#{index}", group=group or self.video_group(video), source=video,
            frame=index, width=known.width if known else None, height=known.height if known else None,
            frame_png=self.frame_png(video, index),
        )

    def video_items(self, video: _VideoEntry) -> list[EvalItem]:
        indices = video.frames
        if indices is None:
            n = video.n_frames
            if n is None or (video.size is not None and video.size != video.path.stat().st_size):
                if n is not None:
                    self.notes.append(f"{relative_path(video.path, self.root)}: size differs from the manifest's "
                                      "\"bytes\"; frames recounted")
                n, width, height = probe_video(video.path)
                video.n_frames = n
                video.width, video.height = video.width or width, video.height or height
            indices = frame_indices(n, video.positions)
        return [self.frame_item(video.path, k) for k in indices]

    # --- items -----------------------------------------------------------------------------

    def still_group(self, image: Path) -> str:
        rel = relative_path(image.parent, self.root)
        if rel == ".":
            return STILLS_GROUP
        return rel if not os.path.isabs(rel) else image.parent.name or STILLS_GROUP

    def still_item(self, image: Path, group: str | None = None) -> EvalItem:
        return EvalItem(id=relative_path(image, self.root), group=group or self.still_group(image), source=image)

    def find_video(self, folder: Path, stem: str) -> Path | None:
        """The video ``<folder>/<stem>.<video suffix>``: a listed one first, then one on disk."""
        for video in self.videos_by_key.values():
            if video.path.parent == folder and video.path.stem == stem:
                return video.path
        for p in sorted(glob.glob(os.path.join(glob.escape(str(folder)), glob.escape(stem) + ".*"))):
            if Path(p).suffix.lower() in VIDEO_SUFFIXES and os.path.isfile(p):
                return Path(p)
        return None

    def item_from_entry(self, entry: dict) -> EvalItem:
        """The item of one reference entry (``"items": "all-in-reference"``)."""
        path = resolve_path(entry["image"], self.root)
        frame = entry.get("frame")
        where = f"reference {quoted(self.reference.path)} entry {quoted(entry['image'])}"
        if frame is not None:
            if not path.is_file():
                raise self.error(f"{where}: video {quoted(path)} not found; fix \"root\" (the entry is relative to it)")
            return self.frame_item(path, frame)
        match = PNG_FRAME.match(path.name)
        if match and self.frames_dir is not None and path.parent == resolve_path(self.frames_dir, path.parent.parent):
            stem, index = match["stem"], int(match["index"])
            video = self.find_video(path.parent.parent, stem)
            if video is not None:
                return self.frame_item(video, index)
            if path.is_file():  # the frame without its video
                return EvalItem(id=relative_path(path, self.root), group=stem, source=path, frame=index, frame_png=path)
        if not path.is_file():
            raise self.error(f"{where}: {quoted(path)} not found; fix \"root\" (entries are relative to it)")
        return self.still_item(path)

    def items_from_spec(self, spec: object, where: str) -> list[EvalItem]:
        """Items of one ``"items"`` entry: a path/glob, ``"video.mp4#140"`` or an object."""
        group = None
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in ITEM_KEYS and not k.startswith("_")]
            if unknown:
                raise self.error(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(ITEM_KEYS)}")
            text, frame, group = spec.get("image"), spec.get("frame"), spec.get("group")
            if frame is not None and (not is_int(frame) or frame < 0):
                raise self.error(f"{where}: \"frame\" must be a 0-based frame index or null")
            if group is not None and (not isinstance(group, str) or not group):
                raise self.error(f"{where}: \"group\" must be a non-empty string")
        elif isinstance(spec, str):
            text, frame = spec, None
            head, sep, tail = spec.rpartition("#")
            if sep and tail.isdigit() and head:
                text, frame = head, int(tail)
        else:
            text = frame = None
        if not isinstance(text, str) or not text:
            raise self.error(f"{where} must be a path, a glob, \"video.mp4#<frame>\" or an object with \"image\"; "
                             f"{README_HINT}")
        if frame is not None:
            if GLOB_CHARS.search(text):
                raise self.error(f"{where}: a frame index needs one video, not the glob {quoted(text)}")
            return [self.frame_item(self.expand(text, where, None)[0], frame, group)]
        out: list[EvalItem] = []
        for path in self.expand(text, where, IMAGE_SUFFIXES | VIDEO_SUFFIXES):
            if path.suffix.lower() in VIDEO_SUFFIXES:
                frames = self.video_items(self.videos_by_key.get(path_key(path)) or _VideoEntry(path, self.positions))
                out.extend(replace(it, group=group) if group else it for it in frames)
            else:
                out.append(self.still_item(path, group))
        return out

    # --- reference -------------------------------------------------------------------------

    def attach(self, item: EvalItem) -> EvalItem:
        """The item with its reference entry (C++ faces, size) when the reference has one."""
        if self.reference is None:
            return item
        index = self.reference.index
        entry = index.get((path_key(item.source), item.frame))
        if entry is None and item.frame is not None:
            video = item.source
            if self.frames_dir is not None:  # the PNG-frame convention: frames/<stem>_f<index>.png
                png = resolve_path(self.frames_dir, video.parent) / f"{video.stem}_f{item.frame}.png"
                entry = index.get((path_key(png), None))
            if entry is None and item.frame_png is not None:
                entry = index.get((path_key(item.frame_png), None))
        if entry is None:
            return item
        return replace(item, cpp_faces=entry["faces"], cpp=entry,
                       width=entry.get("width") or item.width, height=entry.get("height") or item.height)


def _cluster_videos(items: Iterable[EvalItem]) -> list[EvalItem]:
    """Items in order, except that the frames of a video come together, in increasing frame order,
    where its first frame was (reference files list frame PNGs by name: f144 before f57)."""
    items = list(items)
    frames: dict[Path, list[EvalItem]] = {}
    for item in items:
        if item.frame is not None:
            frames.setdefault(item.source, []).append(item)
    out = []
    for item in items:
        if item.frame is None:
            out.append(item)
        elif item.source in frames:
            out.extend(sorted(frames.pop(item.source), key=lambda it: it.frame))
    return out


def load_manifest(path: PathLike | None = None, quick: int | None = None) -> Dataset:
    """Read a manifest (default: :func:`default_manifest`) into a :class:`Dataset`.

    Paths in the manifest are relative to the manifest's folder (``root``, ``reference``) or to
    the root (items, videos). ``quick=N`` keeps ``N`` items spread over the groups for smoke runs
    (:func:`spread_subset`). Raises InputError with a one-line message for a missing or invalid
    manifest, a missing root, reference or listed file, and an unreadable video.
    """
    if quick is not None and (not is_int(quick) or quick < 1):
        raise InputError(f"quick must be a whole number >= 1 (the number of items to keep), got {quick!r}; "
                         "e.g. quick=6")
    if path is None:
        manifest = default_manifest()
    elif isinstance(path, (str, os.PathLike)):
        manifest = Path(path)
    else:
        raise InputError(f"expected the path of a manifest JSON, got {type(path).__name__}; {README_HINT}")
    manifest = Path(os.path.abspath(manifest))
    if path is None and os.environ.get(MANIFEST_ENV, "").strip() and not manifest.is_file():
        raise InputError(f"manifest {quoted(manifest)} (from ${MANIFEST_ENV}) not found; fix {MANIFEST_ENV} "
                         "or unset it "
                         "to use the repository's data/manifest.json")
    dataset = _ManifestBuilder(manifest).build()
    return dataset if quick is None else dataset.subset(quick)
