"""The evaluation set: one :class:`EvalItem` per still or video frame (with its C++ faces when the
reference has them), grouped into a :class:`Dataset`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.images import read_image
from mtcnn_lab.io.videos import iter_video_frames
from mtcnn_lab.lab.dataset.common import REFERENCE_DECODE, is_int, quoted


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
            frames = iter_video_frames(self.source, [self.frame], decode=REFERENCE_DECODE)
            return self.check_size(next(frames)[1], self.source)
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
                f"{self.id} ({quoted(path or self.source)}) is {w}x{h} pixels, but the manifest or reference "
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
                decoders[src] = iter_video_frames(src, sorted(set(wanted[src])), decode=REFERENCE_DECODE)
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
    if not is_int(n) or n < 1:
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
