"""Test clips for the benchmarks and the decoder notebook, built from the OpenFace samples (which are
never committed).

The samples folder is the caller's (``../shared/samples`` beside a checkout); clips are written where
the caller says, usually a temporary folder: MPEG-4 (mp4v) through OpenCV, or phone-like H.264/HEVC
through PyAV (:func:`phone_clip`: BT.709 or HLG tags, a display matrix, 10-bit).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
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


def encode_video(out: Path, frames: Iterable[np.ndarray], codec: str = "libx264", pix_fmt: str = "yuv420p",
                 tags: tuple[int, int, int, int] = (1, 1, 1, 1), display_rotation: int | None = None,
                 pts: Sequence[int] | None = None, gop: int | None = None) -> Path:
    """Encode BGR frames (as stored, all one size) with PyAV at 30 fps, as a phone writes them.

    ``tags``: FFmpeg's codes of the colour matrix, primaries, transfer and range (1, 1, 1, 1: BT.709,
    limited range; 9, 9, 18, 1: BT.2020 HLG); the YUV is made with that matrix (BT.601 for any other code).
    ``display_rotation``: a display matrix of that many degrees (FFmpeg's counter-clockwise convention).
    ``pts``: presentation times in 1/30 s (default one frame each 1/30 s); ``gop``: keyframe interval.
    """
    import av

    matrix, primaries, transfer, colour_range = tags
    container = av.open(str(out), "w")
    stream = container.add_stream(codec, rate=30)
    stream.pix_fmt = pix_fmt
    cc = stream.codec_context
    cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = matrix, primaries, transfer, colour_range
    x265 = "log-level=error" + ("" if gop is None else f":keyint={gop}")
    if gop is not None:
        cc.gop_size = gop
    cc.options = {"x265-params": x265} if codec == "libx265" else ({} if gop is None else {"g": str(gop)})
    if display_rotation is not None:
        stream.set_display_rotation(display_rotation)
    for k, bgr in enumerate(frames):
        if k == 0:
            stream.height, stream.width = bgr.shape[:2]
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(
            format=pix_fmt, dst_colorspace=matrix if matrix in (1, 5, 9) else 5, dst_color_range=colour_range)
        frame.pts = k if pts is None else pts[k]
        frame.time_base = Fraction(1, 30)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return out


def phone_clip(samples: Path, out: Path, frames: int, codec: str = "libx264", pix_fmt: str = "yuv420p",
               hlg: bool = False, display_rotation: int | None = None) -> Path:
    """The portrait frames as a phone writes them (:func:`encode_video`): H.264 or HEVC, tagged BT.709 (or
    BT.2020 HLG with ``hlg``), limited range, 30 fps; with ``display_rotation=-90`` stored 1920x1080 with a
    -90 degree display matrix (how phones store portrait video), so that only a decoder applying it shows
    them upright."""
    stored = (cv2.rotate(canvas, cv2.ROTATE_90_COUNTERCLOCKWISE) if display_rotation == -90 else canvas
              for canvas in _portrait_frames(samples, frames))  # a 90 degree clockwise turn shows them
    return encode_video(out, stored, codec, pix_fmt, (9, 9, 18, 1) if hlg else (1, 1, 1, 1), display_rotation)


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
