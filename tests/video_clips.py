"""Phone-like test clips made in the test with PyAV (libx264/libx265): colour tags, display matrices,
10-bit, variable frame rate and damaged packets; and the check that Debian's OpenCV 4.6 is there."""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from mtcnn_lab.lab.bench_clips import encode_video
from mtcnn_lab.lab.debian_opencv import debian_opencv_version

#: Saturated colour patches (BGR) of the test picture, 48 px squares: their flat centres give
#: conversions that can be checked against the matrices by hand.
PATCHES = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255), (255, 255, 0),
           (40, 90, 200), (200, 160, 60)]
PATCH = 48


def upright_picture(k: int, width: int, height: int) -> np.ndarray:
    """Frame ``k`` of the test picture as it should look (BGR): grey, colour patches in two rows, a white
    marker at the top-left corner and a black one at the bottom-right, and a bar that moves with ``k``."""
    img = np.full((height, width, 3), 128, np.uint8)
    for i, colour in enumerate(PATCHES):
        y, x = 64 + PATCH * (i // 4), 8 + PATCH * (i % 4)
        img[y:y + PATCH, x:x + PATCH] = colour
    img[:32, :32] = 255
    img[-32:, -32:] = 0
    img[height - 80:height - 64, (8 * k) % (width - 40):(8 * k) % (width - 40) + 40] = (30, 200, 120)
    return img


def stored_picture(picture: np.ndarray, display_rotation: int | None) -> np.ndarray:
    """What a camera stores for ``picture`` under a display matrix of ``display_rotation`` degrees
    (counter-clockwise, FFmpeg's convention): turned so that applying the matrix makes it upright."""
    clockwise_needed = 0 if display_rotation is None else (-display_rotation) % 360
    undo = {0: None, 90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
    code = undo[clockwise_needed]
    return picture if code is None else cv2.rotate(picture, code)


def write_clip(path: Path, codec: str = "libx264", width: int = 192, height: int = 336, frames: int = 8,
               pix_fmt: str = "yuv420p", matrix: int = 1, primaries: int = 1, transfer: int = 1,
               colour_range: int = 1, display_rotation: int | None = None,
               pts: list[int] | None = None, gop: int = 4) -> Path:
    """Encode the test picture: ``width``×``height`` as displayed; tags as FFmpeg codes (1: BT.709;
    range 1: limited, 2: full); ``pts`` in 1/30 s (default one frame each 1/30 s)."""
    n = frames if pts is None else len(pts)
    stored = (stored_picture(upright_picture(k, width, height), display_rotation) for k in range(n))
    return encode_video(path, stored, codec, pix_fmt, (matrix, primaries, transfer, colour_range),
                        display_rotation, pts, gop)


def damage_packets(path: Path, packets: range, seed: int = 0) -> Path:
    """Overwrite the middle half of the given packets' payloads (by index in file order) with random bytes."""
    with av.open(str(path)) as container:
        spans = [(p.pos, p.size) for p in container.demux(video=0) if p.size and p.pos is not None]
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for pos, size in (spans[i] for i in packets):
        start, stop = pos + size // 4, pos + 3 * size // 4
        data[start:stop] = rng.integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def require_debian_opencv() -> None:
    """Skip (fail in CI, where ``.ci/run`` installs it) unless Debian's python3-opencv 4.6 is installed."""
    version = debian_opencv_version()
    if version is not None and version.startswith("4.6"):
        return
    why = (f"needs Debian's OpenCV 4.6 (apt-get install python3-opencv; /usr/bin/python3), found {version}: it is "
           "the decoder that --decode opencv-4.6 reproduces")
    if os.environ.get("MTCNN_LAB_CI"):
        pytest.fail(why)
    pytest.skip(why)
