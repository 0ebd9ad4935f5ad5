"""The evaluation set: which images and video frames the workbench compares with C++ OpenFace.

A *manifest* (JSON, schema in ``data/README.md``) names a root folder, optionally a JSON of C++
results in the ``cpp_mtcnn_dev.json`` / ``mtcnn-lab detect --json`` schema, and the items to
evaluate: still images, image sequences and frames sampled from videos. :func:`load_manifest`
turns it into a :class:`Dataset` of :class:`EvalItem` objects, each with its C++ faces attached
when the reference has them.

The default manifest, ``data/manifest.json`` in the repository (override with the environment
variable ``MTCNN_LAB_MANIFEST``), points at OpenFace's samples and their C++ reference in
``../shared`` beside the checkout; nothing of them is copied into the repository.

Video frames are identified by ``(video, 0-based index in decode order)``. When a lossless PNG of
the frame exists as ``<video folder>/frames/<stem>_f<index>.png`` (the convention of
``shared/samples/frames``), :meth:`EvalItem.load` reads it instead of decoding the video: those
PNGs are the canonical pixels, because video decoders differ between OpenCV builds.

Every problem raises :class:`~mtcnn_lab.errors.InputError` with a one-line message naming the
file and the fix.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mtcnn_lab.errors import InputError, OutputExists
from mtcnn_lab.files import write_json
from mtcnn_lab.io.images import read_image
from mtcnn_lab.io.paths import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from mtcnn_lab.io.videos import DEFAULT_POSITIONS, count_frames, frame_indices, iter_video_frames

__all__ = [
    "ALL_IN_REFERENCE",
    "DEFAULT_MANIFEST",
    "MANIFEST_ENV",
    "Dataset",
    "EvalItem",
    "default_manifest",
    "load_manifest",
    "write_manifest_for_folder",
]

PathLike = str | os.PathLike[str]

#: The repository's manifest (OpenFace's samples and C++ reference in ``../shared``), relative to the
#: working directory: the repository root, from which ``./run_all.sh``, the tests and the benchmarks run.
DEFAULT_MANIFEST: Path = Path("data") / "manifest.json"

#: Environment variable that replaces :data:`DEFAULT_MANIFEST` (an explicit path still wins).
MANIFEST_ENV = "MTCNN_LAB_MANIFEST"

#: ``"items"`` value meaning: one item per entry of the reference JSON.
ALL_IN_REFERENCE = "all-in-reference"

#: Group of the still images directly in the root folder.
STILLS_GROUP = "stills"

#: Default folder (relative to a video's folder) of pre-extracted frames ``<stem>_f<index>.png``.
DEFAULT_FRAMES_DIR = "frames"

_MANIFEST_KEYS = ("name", "description", "root", "reference", "items", "videos", "positions", "frames_dir")
_VIDEO_KEYS = ("path", "positions", "frames", "n_frames", "bytes", "width", "height", "group")
_ITEM_KEYS = ("image", "frame", "group")
_PNG_FRAME = re.compile(r"^(?P<stem>.+)_f(?P<index>\d+)\.png$")
_GLOB_CHARS = re.compile(r"[*?\[]")
_README = "see data/README.md"
_HOW_TO_POINT = (f"point the workbench at your own data with {MANIFEST_ENV}=/path/manifest.json "
                 "(write one with: mtcnn-lab manifest write VIDEO_FOLDER manifest.json)")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _q(path: object) -> str:
    """Quote a path for a one-line message (control characters escaped)."""
    text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    return f"'{text}'" if text.isprintable() else repr(text)


def _resolve(text: str, base: Path) -> Path:
    """``text`` (``~`` and ``$VARS`` expanded) as an absolute, normalised path; relative to ``base``."""
    expanded = os.path.expandvars(os.path.expanduser(text))
    return Path(os.path.normpath(os.path.join(base, expanded)))


def _key(path: Path) -> str:
    """A path identity for matching reference entries (symlinks resolved, case folded on Windows)."""
    return os.path.normcase(os.path.realpath(path))


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, or the absolute path when it is outside."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _shared_hint(missing: Path) -> str:
    """Why a path under a ``shared`` folder is missing: the folder beside the checkout is absent."""
    for folder in missing.parents:
        if folder.name == "shared":
            if not folder.is_dir():
                return (f" (the OpenFace samples and C++ reference live in {_q(folder)}, the shared/ folder beside "
                        "the checkout, which is not present here)")
            return f" ({_q(folder)} exists but lacks it)"
    return ""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_json(path: Path, what: str, fix: str) -> object:
    """Parse a JSON file; every failure is a one-line InputError naming ``path``."""
    shown = _q(path)
    if not path.exists():
        raise InputError(f"{what} {shown} not found; {fix}")
    if path.is_dir():
        raise InputError(f"{what} {shown} is a directory, not a JSON file; {fix}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} {shown} is not UTF-8 text; save it as UTF-8 JSON ({_README})") from None
    except OSError as err:
        raise InputError(f"{what} {shown}: cannot read the file ({err.strerror or err}); check the path") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{what} {shown} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); "
                         f"fix the file ({_README})") from None


# --------------------------------------------------------------------------------------------
# items and data sets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalItem:
    """One image to evaluate: a still image or one frame of a video.

    * ``id``: unique in its data set: the path relative to the root (``sample1.jpg``,
      ``image_sequence/001.jpg``), with ``#<frame>`` for a video frame (``multi_face.avi#140``).
    * ``group``: for per-video tables: the video's path relative to the root without its suffix
      (``multi_face``), ``"stills"`` for images directly in the root, otherwise the image's
      folder relative to the root (``image_sequence``).
    * ``source``: the still image or the video file; ``frame``: the 0-based frame index in decode
      order for a video frame, ``None`` for a still image.
    * ``frame_png``: a lossless PNG of that frame, read instead of decoding the video (canonical
      pixels), or ``None``.
    * ``width``, ``height``: when known (from the reference or the manifest), checked by
      :meth:`load`.
    * ``cpp_faces``: the C++ faces (``bbox``, ``confidence``, ``landmarks``, ...) or ``None`` when
      the reference has no entry for this item (comparisons are then skipped); ``cpp``: that whole
      reference entry (``pixels_bgr_sha256``, timings, ...).
    """

    id: str
    group: str
    source: Path
    frame: int | None = None
    width: int | None = None
    height: int | None = None
    cpp_faces: list[dict] | None = field(default=None, compare=False, repr=False)
    frame_png: Path | None = None
    cpp: dict | None = field(default=None, compare=False, repr=False)

    @property
    def is_video_frame(self) -> bool:
        """True for a frame of a video, False for a still image."""
        return self.frame is not None

    @property
    def has_reference(self) -> bool:
        """True when C++ faces are attached."""
        return self.cpp_faces is not None

    def load(self, decode_video: bool = False) -> np.ndarray:
        """The image as BGR uint8 ``H×W×3`` (as ``cv2.imread`` / ``VideoCapture.read`` give it).

        A video frame comes from ``frame_png`` when there is one (unless ``decode_video``), else
        from a sequential decode of the video up to the frame (:meth:`Dataset.iter_images`
        decodes each video once for all its items).
        """
        if self.decodes_video(decode_video):
            return self.check_size(next(iter_video_frames(self.source, [self.frame]))[1], self.source)
        path = self.source if self.frame_png is None else self.frame_png
        return self.check_size(read_image(path), path)

    def decodes_video(self, decode_video: bool = False) -> bool:
        """True when :meth:`load` (with this ``decode_video``) decodes the video rather than reading a file."""
        if self.frame is None or self.source == self.frame_png:  # a still, or a frame PNG without its video
            return False
        return self.frame_png is None or decode_video

    def check_size(self, image: np.ndarray, path: Path | None = None) -> np.ndarray:
        """``image`` (read from ``path``), after checking its size against ``width``/``height`` when known."""
        h, w = image.shape[:2]
        if (self.width is not None and w != self.width) or (self.height is not None and h != self.height):
            raise InputError(
                f"{self.id} ({_q(path or self.source)}) is {w}x{h} pixels, but the manifest or reference "
                f"says {self.width}x{self.height}; the file is not the one the reference was computed on: "
                "fix the manifest or recompute the reference"
            )
        return image


@dataclass(frozen=True, eq=False)
class Dataset:
    """The items of a manifest, in manifest order, with the reference they are compared with.

    ``reference_meta`` is the reference JSON's ``meta`` (``None`` without a reference);
    ``notes`` lists things worth knowing that were not errors (entries skipped, videos recounted).
    """

    name: str
    items: tuple[EvalItem, ...]
    reference_meta: dict | None = None
    manifest: Path | None = None
    root: Path | None = None
    reference: Path | None = None
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[EvalItem]:
        return iter(self.items)

    def __getitem__(self, key: int | str) -> EvalItem:
        """An item by position or by id."""
        if isinstance(key, str):
            for item in self.items:
                if item.id == key:
                    return item
            raise KeyError(key)
        return self.items[key]

    @property
    def has_reference(self) -> bool:
        """True when the manifest names a reference JSON."""
        return self.reference is not None

    @property
    def groups(self) -> tuple[str, ...]:
        """Group names in order of first appearance."""
        return tuple(self.by_group())

    def by_group(self) -> dict[str, list[EvalItem]]:
        """``{group: [items]}``, groups in order of first appearance, items in data-set order."""
        out: dict[str, list[EvalItem]] = {}
        for item in self.items:
            out.setdefault(item.group, []).append(item)
        return out

    def subset(self, n: int) -> Dataset:
        """At most ``n`` items spread over the groups (deterministic; see :func:`spread_subset`)."""
        return replace(self, items=spread_subset(self.items, n))

    def iter_images(self, decode_video: bool = False) -> Iterator[tuple[EvalItem, np.ndarray]]:
        """Yield ``(item, image)`` for every item in order, decoding each video only once.

        Frames of a video without PNG frames (or all video frames with ``decode_video``) are
        decoded in one sequential pass shared by the video's items; frames decoded ahead of their
        turn are kept until used, so frames in increasing order (the data set's order) hold none.
        """
        wanted: dict[Path, list[int]] = {}
        for item in self.items:
            if item.decodes_video(decode_video):
                wanted.setdefault(item.source, []).append(item.frame)
        decoders: dict[Path, Iterator[tuple[int, np.ndarray]]] = {}
        buffers: dict[Path, dict[int, np.ndarray]] = {}
        for item in self.items:
            if not item.decodes_video(decode_video):
                yield item, item.load()
                continue
            src = item.source
            if src not in decoders:
                decoders[src] = iter_video_frames(src, sorted(set(wanted[src])))
                buffers[src] = {}
            buffer = buffers[src]
            while item.frame not in buffer:
                index, image = next(decoders[src])  # InputError past the end; never exhausted before
                buffer[index] = image
            image = buffer[item.frame]
            wanted[src].remove(item.frame)
            if item.frame not in wanted[src]:
                del buffer[item.frame]
            yield item, item.check_size(image, src)


def spread_subset(items: Sequence[EvalItem], n: int) -> tuple[EvalItem, ...]:
    """At most ``n`` items, spread over the groups, in their original order; deterministic.

    Groups (in order of first appearance) get one item each in turn until ``n`` are allotted;
    inside a group the chosen items are evenly spaced (one item: the middle one).
    """
    if not _is_int(n) or n < 1:
        raise InputError(f"quick must be a whole number >= 1 (the number of items to keep), got {n!r}; e.g. quick=6")
    items = tuple(items)
    if n >= len(items):
        return items
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.group, []).append(i)
    quota = dict.fromkeys(groups, 0)
    left = n
    while left:
        for name, members in groups.items():
            if left and quota[name] < len(members):
                quota[name] += 1
                left -= 1
    keep = set()
    for name, members in groups.items():
        m, k = len(members), quota[name]
        keep.update(members[(2 * j + 1) * m // (2 * k)] for j in range(k))
    return tuple(items[i] for i in sorted(keep))


# --------------------------------------------------------------------------------------------
# the reference JSON
# --------------------------------------------------------------------------------------------


@dataclass
class _Reference:
    path: Path
    meta: dict | None
    entries: list[dict]
    index: dict[tuple[str, int | None], dict]
    skipped: int


def _check_faces(faces: object, where: str) -> None:
    if not isinstance(faces, list):
        raise InputError(f"{where}: \"faces\" must be a list of faces; {_README}")
    for face in faces:
        if not isinstance(face, dict) or not isinstance(face.get("bbox"), list) or len(face["bbox"]) != 4 \
                or not all(_is_number(v) for v in face["bbox"]):
            raise InputError(f"{where}: every face needs \"bbox\": [x, y, w, h] (numbers); {_README}")
        if "confidence" in face and not _is_number(face["confidence"]):
            raise InputError(f"{where}: a face's \"confidence\" must be a number; {_README}")
        landmarks = face.get("landmarks")
        if landmarks is not None and (not isinstance(landmarks, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in landmarks)):
            raise InputError(f"{where}: a face's \"landmarks\" must be a list of [x, y] points; {_README}")


def _load_reference(path: Path, root: Path, manifest_shown: str) -> _Reference:
    data = _read_json(path, "reference", f"fix \"reference\" in manifest {manifest_shown} or remove it "
                                         "(items then have no C++ faces)")
    shown = _q(path)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise InputError(f"reference {shown} must be a JSON object with a \"results\" list (the schema of "
                         f"cpp_mtcnn_dev.json and mtcnn-lab detect --json); {_README}")
    meta = data.get("meta")
    entries, index, skipped = [], {}, 0
    for n, entry in enumerate(data["results"]):
        where = f"reference {shown}, results[{n}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or not entry["image"]:
            raise InputError(f"{where}: each result needs an \"image\" path (relative to the root); {_README}")
        frame = entry.get("frame")
        if frame is not None and (not _is_int(frame) or frame < 0):
            raise InputError(f"{where} ({entry['image']}): \"frame\" must be a 0-based frame index or null")
        if "faces" not in entry:
            if "error" in entry:  # an input the run could not read (mtcnn-lab detect --json)
                skipped += 1
                continue
            raise InputError(f"{where} ({entry['image']}): no \"faces\" list; {_README}")
        _check_faces(entry["faces"], f"{where} ({entry['image']})")
        for size in ("width", "height"):
            if entry.get(size) is not None and (not _is_int(entry[size]) or entry[size] < 1):
                raise InputError(f"{where} ({entry['image']}): \"{size}\" must be a positive whole number")
        key = (_key(_resolve(entry["image"], root)), frame)
        if key in index:
            what = entry["image"] if frame is None else f"{entry['image']} frame {frame}"
            raise InputError(f"reference {shown} lists {what} twice; keep one entry per image or frame")
        index[key] = entry
        entries.append(entry)
    return _Reference(path, meta if isinstance(meta, dict) else None, entries, index, skipped)


# --------------------------------------------------------------------------------------------
# videos
# --------------------------------------------------------------------------------------------

_PROBES: dict[tuple[str, int, int], tuple[int, int, int]] = {}


def _probe_video(path: Path) -> tuple[int, int, int]:
    """``(decodable frames, width, height)`` of a video; cached per file version in this process."""
    st = path.stat()
    cache_key = (_key(path), st.st_size, st.st_mtime_ns)
    if cache_key not in _PROBES:
        n = count_frames(path)
        _, first = next(iter_video_frames(path, [0]))
        _PROBES[cache_key] = (n, first.shape[1], first.shape[0])
    return _PROBES[cache_key]


@dataclass
class _Video:
    path: Path
    positions: tuple[float, ...]
    frames: list[int] | None = None
    n_frames: int | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    group: str | None = None


def _check_positions(value: object, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: \"positions\" must be a list of fractions in [0, 1], e.g. [0.2, 0.5, 0.8]")
    try:
        frame_indices(1, value)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    return tuple(float(p) for p in value)


class _Builder:
    """Reads one manifest; every error names the manifest."""

    def __init__(self, manifest: Path) -> None:
        self.manifest = manifest
        self.shown = _q(manifest)
        self.base = manifest.parent
        self.notes: list[str] = []

    def error(self, message: str) -> InputError:
        return InputError(f"manifest {self.shown}: {message}")

    # --- top level --------------------------------------------------------------------------

    def build(self) -> Dataset:
        is_default = _key(self.manifest) == _key(Path(os.path.abspath(DEFAULT_MANIFEST)))
        fix = (f"check the path, or {_HOW_TO_POINT}" if not is_default
               else f"the repository's data/manifest.json is missing (restore it with git checkout data/manifest.json) "
                    f"or {_HOW_TO_POINT}")
        data = _read_json(self.manifest, "manifest", fix)
        if not isinstance(data, dict):
            raise self.error('must be a JSON object such as {"root": "videos", "videos": "*.mp4"}; ' + _README)
        unknown = [k for k in data if k not in _MANIFEST_KEYS and not k.startswith("_")]
        if unknown:
            raise self.error(f"unknown key {unknown[0]!r}; the keys are {', '.join(_MANIFEST_KEYS)} "
                             f"(keys starting with _ are comments)")
        name = data.get("name", self.manifest.stem if self.manifest.stem != "manifest" else self.base.name)
        if not isinstance(name, str) or not name:
            raise self.error("\"name\" must be a non-empty string")

        root_text = data.get("root", ".")
        if not isinstance(root_text, str) or not root_text:
            raise self.error("\"root\" must be a folder path (relative to the manifest's folder or absolute)")
        self.root = root = _resolve(root_text, self.base)
        if not root.is_dir():
            what = "is not a folder" if root.exists() else "does not exist"
            hint = _shared_hint(root)
            raise self.error(f"root {_q(root_text)} ({_q(root)}) {what}{hint}; fix \"root\" or {_HOW_TO_POINT}")

        self.positions = _check_positions(data["positions"], f"manifest {self.shown}") if "positions" in data \
            else tuple(DEFAULT_POSITIONS)
        frames_dir = data.get("frames_dir", DEFAULT_FRAMES_DIR)
        if frames_dir is not None and (not isinstance(frames_dir, str) or not frames_dir):
            raise self.error("\"frames_dir\" must be a folder name (relative to each video's folder) or null")
        self.frames_dir = frames_dir

        reference = None
        if data.get("reference") is not None:
            if not isinstance(data["reference"], str) or not data["reference"]:
                raise self.error("\"reference\" must be the path of a JSON of C++ results, or null")
            ref_path = _resolve(data["reference"], self.base)
            if not ref_path.is_file():
                hint = _shared_hint(ref_path)
                raise InputError(
                    f"manifest {self.shown}: reference {_q(data['reference'])} ({_q(ref_path)}) not found{hint}; "
                    f"fix \"reference\", remove it (items then have no C++ faces) or {_HOW_TO_POINT}")
            reference = _load_reference(ref_path, root, self.shown)
            if reference.skipped:
                self.notes.append(f"{reference.skipped} reference entries have an \"error\" and no faces; skipped")
        self.reference = reference

        videos = self.parse_videos(data.get("videos"))
        self.videos_by_key = {_key(v.path): v for v in videos}
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
                             f"or {{\"image\", \"frame\", \"group\"}} objects; {_README}")
        for video in videos:
            for item in self.video_items(video):
                add(item)
        if not items:
            raise self.error(f"lists nothing to evaluate; add \"videos\" (e.g. \"*.mp4\") or \"items\"; {_README}")
        out = tuple(self.attach(item) for item in _cluster_videos(items.values()))
        return Dataset(name=name, items=out, reference_meta=reference.meta if reference else None,
                       manifest=self.manifest, root=root, reference=reference.path if reference else None,
                       notes=tuple(self.notes))

    # --- videos ----------------------------------------------------------------------------

    def expand(self, pattern: str, where: str, suffixes: frozenset[str] | None) -> list[Path]:
        """Files matching a glob under the root (sorted), or the one file named; error if none."""
        if _GLOB_CHARS.search(pattern):
            full = os.path.expandvars(os.path.expanduser(pattern))
            full = full if os.path.isabs(full) else os.path.join(glob.escape(str(self.root)), full)
            found = sorted(Path(p) for p in glob.glob(full, recursive=True) if os.path.isfile(p)
                           and (suffixes is None or Path(p).suffix.lower() in suffixes))
            if not found:
                kind = "video" if suffixes is VIDEO_SUFFIXES else "image or video"
                raise self.error(f"{where} {_q(pattern)} matches no {kind} file under root {_q(self.root)}; "
                                 "fix the pattern or the root")
            return [Path(os.path.normpath(p)) for p in found]
        path = _resolve(pattern, self.root)
        if not path.is_file():
            what = "is not a file" if path.exists() else "not found"
            raise self.error(f"{where} {_q(pattern)} ({_q(path)}) {what}; fix the name, the root, or remove it")
        return [path]

    def parse_videos(self, spec: object) -> list[_Video]:
        if spec is None:
            return []
        entries = [spec] if isinstance(spec, (str, dict)) else spec
        if not isinstance(entries, list):
            raise self.error(f"\"videos\" must be a glob such as \"*.mp4\", a list of video paths or "
                             f"{{\"path\": ...}} objects; {_README}")
        out: dict[str, _Video] = {}
        for n, entry in enumerate(entries):
            where = f"videos[{n}]"
            if isinstance(entry, str) and entry:
                for path in self.expand(entry, f"video {where}", VIDEO_SUFFIXES):
                    out.setdefault(_key(path), _Video(path, self.positions))
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
                raise self.error(f"{where} must be a path, a glob or an object with a \"path\"; {_README}")
            unknown = [k for k in entry if k not in _VIDEO_KEYS and not k.startswith("_")]
            if unknown:
                raise self.error(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(_VIDEO_KEYS)}")
            positions = (_check_positions(entry["positions"], f"manifest {self.shown}, {where}")
                         if "positions" in entry else self.positions)
            frames = entry.get("frames")
            if frames is not None and (not isinstance(frames, list) or not frames
                                       or not all(_is_int(k) and k >= 0 for k in frames)):
                raise self.error(f"{where}: \"frames\" must be a list of 0-based frame indices, e.g. [0, 30, 60]")
            if frames is not None and "positions" in entry:
                raise self.error(f"{where}: give \"positions\" or \"frames\", not both")
            for k in ("n_frames", "bytes", "width", "height"):
                if entry.get(k) is not None and (not _is_int(entry[k]) or entry[k] < 1):
                    raise self.error(f"{where}: \"{k}\" must be a positive whole number (or leave it out)")
            if entry.get("group") is not None and (not isinstance(entry["group"], str) or not entry["group"]):
                raise self.error(f"{where}: \"group\" must be a non-empty string")
            for path in self.expand(entry["path"], f"video {where}", VIDEO_SUFFIXES):
                out.setdefault(_key(path), _Video(
                    path, positions, sorted(set(frames)) if frames is not None else None,
                    entry.get("n_frames"), entry.get("bytes"), entry.get("width"), entry.get("height"),
                    entry.get("group")))
        return list(out.values())

    def video_group(self, video: Path) -> str:
        known = self.videos_by_key.get(_key(video))
        if known is not None and known.group:
            return known.group
        rel = _relative(video.with_suffix(""), self.root)
        return rel if not os.path.isabs(rel) else video.stem

    def frame_png(self, video: Path, index: int) -> Path | None:
        """The pre-extracted PNG of a frame when the manifest's frames folder holds one."""
        if self.frames_dir is None:
            return None
        png = _resolve(self.frames_dir, video.parent) / f"{video.stem}_f{index}.png"
        return png if png.is_file() else None

    def frame_item(self, video: Path, index: int, group: str | None = None) -> EvalItem:
        known = self.videos_by_key.get(_key(video))
        return EvalItem(
            id=f"{_relative(video, self.root)}#{index}", group=group or self.video_group(video), source=video,
            frame=index, width=known.width if known else None, height=known.height if known else None,
            frame_png=self.frame_png(video, index),
        )

    def video_items(self, video: _Video) -> list[EvalItem]:
        indices = video.frames
        if indices is None:
            n = video.n_frames
            if n is None or (video.size is not None and video.size != video.path.stat().st_size):
                if n is not None:
                    self.notes.append(f"{_relative(video.path, self.root)}: size differs from the manifest's "
                                      "\"bytes\"; frames recounted")
                n, width, height = _probe_video(video.path)
                video.n_frames = n
                video.width, video.height = video.width or width, video.height or height
            indices = frame_indices(n, video.positions)
        return [self.frame_item(video.path, k) for k in indices]

    # --- items -----------------------------------------------------------------------------

    def still_group(self, image: Path) -> str:
        rel = _relative(image.parent, self.root)
        if rel == ".":
            return STILLS_GROUP
        return rel if not os.path.isabs(rel) else image.parent.name or STILLS_GROUP

    def still_item(self, image: Path, group: str | None = None) -> EvalItem:
        return EvalItem(id=_relative(image, self.root), group=group or self.still_group(image), source=image)

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
        path = _resolve(entry["image"], self.root)
        frame = entry.get("frame")
        where = f"reference {_q(self.reference.path)} entry {_q(entry['image'])}"
        if frame is not None:
            if not path.is_file():
                raise self.error(f"{where}: video {_q(path)} not found; fix \"root\" (the entry is relative to it)")
            return self.frame_item(path, frame)
        match = _PNG_FRAME.match(path.name)
        if match and self.frames_dir is not None and path.parent == _resolve(self.frames_dir, path.parent.parent):
            stem, index = match["stem"], int(match["index"])
            video = self.find_video(path.parent.parent, stem)
            if video is not None:
                return self.frame_item(video, index)
            if path.is_file():  # the frame without its video
                return EvalItem(id=_relative(path, self.root), group=stem, source=path, frame=index, frame_png=path)
        if not path.is_file():
            raise self.error(f"{where}: {_q(path)} not found; fix \"root\" (entries are relative to it)")
        return self.still_item(path)

    def items_from_spec(self, spec: object, where: str) -> list[EvalItem]:
        """Items of one ``"items"`` entry: a path/glob, ``"video.mp4#140"`` or an object."""
        group = None
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in _ITEM_KEYS and not k.startswith("_")]
            if unknown:
                raise self.error(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(_ITEM_KEYS)}")
            text, frame, group = spec.get("image"), spec.get("frame"), spec.get("group")
            if frame is not None and (not _is_int(frame) or frame < 0):
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
                             f"{_README}")
        if frame is not None:
            if _GLOB_CHARS.search(text):
                raise self.error(f"{where}: a frame index needs one video, not the glob {_q(text)}")
            return [self.frame_item(self.expand(text, where, None)[0], frame, group)]
        out: list[EvalItem] = []
        for path in self.expand(text, where, IMAGE_SUFFIXES | VIDEO_SUFFIXES):
            if path.suffix.lower() in VIDEO_SUFFIXES:
                frames = self.video_items(self.videos_by_key.get(_key(path)) or _Video(path, self.positions))
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
        entry = index.get((_key(item.source), item.frame))
        if entry is None and item.frame is not None:
            video = item.source
            if self.frames_dir is not None:  # the PNG-frame convention: frames/<stem>_f<index>.png
                png = _resolve(self.frames_dir, video.parent) / f"{video.stem}_f{item.frame}.png"
                entry = index.get((_key(png), None))
            if entry is None and item.frame_png is not None:
                entry = index.get((_key(item.frame_png), None))
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


# --------------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------------


def default_manifest() -> Path:
    """``$MTCNN_LAB_MANIFEST`` when set (and not empty), else :data:`DEFAULT_MANIFEST` (in the working
    directory)."""
    env = os.environ.get(MANIFEST_ENV, "").strip()
    return Path(os.path.expanduser(env)) if env else DEFAULT_MANIFEST


def load_manifest(path: PathLike | None = None, quick: int | None = None) -> Dataset:
    """Read a manifest (default: :func:`default_manifest`) into a :class:`Dataset`.

    Paths in the manifest are relative to the manifest's folder (``root``, ``reference``) or to
    the root (items, videos). ``quick=N`` keeps ``N`` items spread over the groups for smoke runs
    (:func:`spread_subset`). Raises InputError with a one-line message for a missing or invalid
    manifest, a missing root, reference or listed file, and an unreadable video.
    """
    if quick is not None and (not _is_int(quick) or quick < 1):
        raise InputError(f"quick must be a whole number >= 1 (the number of items to keep), got {quick!r}; "
                         "e.g. quick=6")
    if path is None:
        manifest = default_manifest()
    elif isinstance(path, (str, os.PathLike)):
        manifest = Path(path)
    else:
        raise InputError(f"expected the path of a manifest JSON, got {type(path).__name__}; {_README}")
    manifest = Path(os.path.abspath(manifest))
    if path is None and manifest != Path(os.path.abspath(DEFAULT_MANIFEST)) and not manifest.is_file():
        raise InputError(f"manifest {_q(manifest)} (from ${MANIFEST_ENV}) not found; fix {MANIFEST_ENV} or unset it "
                         "to use the repository's data/manifest.json")
    dataset = _Builder(manifest).build()
    return dataset if quick is None else dataset.subset(quick)


def _manifest_path(target: Path, base: Path) -> str:
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
        raise InputError(f"video folder {_q(folder_p)} {what}; pass the folder that holds the videos")
    if out_p.is_dir():
        raise InputError(f"{_q(out_p)} is a directory; give a file path for the manifest, "
                         f"e.g. {_q(out_p / 'manifest.json')}")
    if out_p.exists() and not overwrite:
        raise InputError(f"{_q(out_p)} already exists; pass overwrite=True (--overwrite) or choose another path")
    pos = list(positions) if not isinstance(positions, (int, float)) else [positions]
    try:
        frame_indices(1, pos)
    except InputError as err:
        raise InputError(f"positions for {_q(out_p)}: {err}") from None
    files = sorted(p for p in folder_p.iterdir() if p.is_file())
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not videos and not images:
        raise InputError(f"{_q(folder_p)} holds no video ({', '.join(sorted(VIDEO_SUFFIXES)[:6])}, ...) or image; "
                         "pass the folder that holds them")
    base = out_p.parent
    entries = []
    for video in videos:
        n, width, height = _probe_video(video)
        entries.append({"path": video.name, "n_frames": n, "bytes": video.stat().st_size,
                        "width": width, "height": height})
    data: dict = {
        "name": name or folder_p.name,
        "description": f"videos in {folder_p.name}/, frames at {', '.join(f'{p:g}' for p in pos)} of their length",
        "root": _manifest_path(folder_p, base),
    }
    if reference is not None:
        ref_p = Path(os.path.abspath(os.path.expanduser(os.fspath(reference))))
        if not ref_p.is_file():
            raise InputError(f"reference {_q(ref_p)} not found; pass the JSON of C++ results (or leave it out)")
        _load_reference(ref_p, folder_p, _q(out_p))  # fail now, not when the manifest is loaded
        data["reference"] = _manifest_path(ref_p, base)
    data["positions"] = [float(p) for p in pos]
    if videos:
        data["videos"] = entries
    if images:
        data["items"] = [p.name for p in images]
    try:
        write_json(out_p, data, overwrite=overwrite)
    except OutputExists:
        raise InputError(f"{_q(out_p)} already exists; pass overwrite=True (--overwrite) or choose another path") \
            from None
    except OSError as err:
        raise InputError(f"cannot write {_q(out_p)} ({err.strerror or err}); choose a writable folder") from None
    return out_p
