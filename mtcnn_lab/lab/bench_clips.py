"""Test clips for the speed benchmarks, built from the OpenFace samples (which are never committed).

The samples folder is the caller's (``../shared/samples`` beside a checkout); clips are MPEG-4 (mp4v)
written where the caller says, usually a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mtcnn_lab.io.images import read_image
from mtcnn_lab.io.videos import iter_video_frames


def portrait_clip(samples: Path, out: Path, frames: int) -> Path:
    """A 1080x1920 (portrait) clip: two sample faces pasted on a canvas, drifting a few px per frame."""
    people = cv2.resize(read_image(samples / "sample2.jpg"), (1080, 720))
    group = read_image(samples / "frames" / "multi_face_f140.png")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 30, (1080, 1920))
    for k in range(frames):
        canvas = np.full((1920, 1080, 3), 70, np.uint8)
        canvas[150 + k % 20:870 + k % 20] = people
        canvas[1100:1580, 200 + 2 * (k % 30):840 + 2 * (k % 30)] = group
        writer.write(canvas)
    writer.release()
    return out


def vga_clip(samples: Path, out: Path, frames: int) -> Path:
    """``frames`` frames of multi_face.avi (640x480, 3 faces, 702 frames, played again from the start
    when more are asked for) re-encoded as mp4v."""
    source = [frame for _, frame in iter_video_frames(samples / "multi_face.avi", range(min(frames, 702)))]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    for k in range(frames):
        writer.write(source[k % len(source)])
    writer.release()
    return out
