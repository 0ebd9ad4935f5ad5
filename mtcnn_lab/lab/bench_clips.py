"""Test clips for the benchmarks and the decoder notebook, built from the OpenFace samples (which are
never committed).

The samples folder is the caller's (``../shared/samples`` beside a checkout); clips are written where
the caller says, usually a temporary folder: MPEG-4 (mp4v) through OpenCV, or phone-like H.264/HEVC
through PyAV (:func:`phone_clip`: BT.709 or HLG tags, a display matrix, 10-bit).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from mtcnn_lab.io.images import read_image
from mtcnn_lab.io.videos import iter_video_frames


def _portrait_frames(samples: Path, frames: int) -> Iterator[np.ndarray]:
    """1080x1920 (portrait) BGR frames: two sample faces pasted on a canvas, drifting a few px per frame."""
    people = cv2.resize(read_image(samples / "sample2.jpg"), (1080, 720))
    group = read_image(samples / "frames" / "multi_face_f140.png")
    for k in range(frames):
        canvas = np.full((1920, 1080, 3), 70, np.uint8)
        canvas[150 + k % 20:870 + k % 20] = people
        canvas[1100:1580, 200 + 2 * (k % 30):840 + 2 * (k % 30)] = group
        yield canvas


def portrait_clip(samples: Path, out: Path, frames: int) -> Path:
    """A 1080x1920 (portrait) MPEG-4 clip: two sample faces pasted on a canvas, drifting a few px per frame."""
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 30, (1080, 1920))
    for canvas in _portrait_frames(samples, frames):
        writer.write(canvas)
    writer.release()
    return out


#: The phone-like clips of :func:`phone_clips`: codec, pixel format, HLG tags, display matrix (degrees).
PHONE_CLIPS = {
    "h264_bt709": ("libx264", "yuv420p", False, None),
    "hevc_bt709": ("libx265", "yuv420p", False, None),
    "h264_rot-90": ("libx264", "yuv420p", False, -90),
    "hevc_hlg10": ("libx265", "yuv420p10le", True, None),
}


def phone_clip(samples: Path, out: Path, frames: int, codec: str = "libx264", pix_fmt: str = "yuv420p",
               hlg: bool = False, display_rotation: int | None = None) -> Path:
    """The portrait frames as a phone writes them: H.264 or HEVC, tagged BT.709 (or BT.2020 HLG with
    ``hlg``), limited range, 30 fps; with ``display_rotation=-90`` stored 1920x1080 with a -90 degree
    display matrix (how phones store portrait video), so that only a decoder applying it shows them upright."""
    import av

    matrix, primaries, transfer = (9, 9, 18) if hlg else (1, 1, 1)
    container = av.open(str(out), "w")
    stream = container.add_stream(codec, rate=30)
    stream.pix_fmt = pix_fmt
    stream.width, stream.height = (1080, 1920) if display_rotation is None else (1920, 1080)
    cc = stream.codec_context
    cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = matrix, primaries, transfer, 1
    if codec == "libx265":
        cc.options = {"x265-params": "log-level=error"}
    if display_rotation is not None:
        stream.set_display_rotation(display_rotation)
    for k, canvas in enumerate(_portrait_frames(samples, frames)):
        if display_rotation == -90:
            canvas = cv2.rotate(canvas, cv2.ROTATE_90_COUNTERCLOCKWISE)  # a 90 degree clockwise turn shows it
        frame = av.VideoFrame.from_ndarray(canvas, format="bgr24").reformat(
            format=pix_fmt, dst_colorspace=matrix, dst_color_range=1)
        frame.pts = k
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return out


def phone_clips(samples: Path, out_dir: Path, frames: int) -> dict[str, Path]:
    """Every clip of :data:`PHONE_CLIPS` in ``out_dir``, by name."""
    return {name: phone_clip(samples, out_dir / f"{name}.mp4", frames, codec, pix_fmt, hlg, rotation)
            for name, (codec, pix_fmt, hlg, rotation) in PHONE_CLIPS.items()}


def vga_clip(samples: Path, out: Path, frames: int) -> Path:
    """``frames`` frames of multi_face.avi (640x480, 3 faces, 702 frames, played again from the start
    when more are asked for) re-encoded as mp4v."""
    decoded = iter_video_frames(samples / "multi_face.avi", range(min(frames, 702)), decode="opencv-python")
    source = [frame for _, frame in decoded]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    for k in range(frames):
        writer.write(source[k % len(source)])
    writer.release()
    return out
