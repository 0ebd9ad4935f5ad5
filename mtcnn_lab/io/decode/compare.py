"""Where the decode profiles disagree on one video: the rotation each applies and how far its first
frame's pixels are from the upright, tag-honouring picture (``mtcnn-lab probe``)."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.decode.probe import VideoInfo, probe_video
from mtcnn_lab.io.decode.profiles import PROFILES, get_profile
from mtcnn_lab.io.decode.pyav_reader import PyAVReader
from mtcnn_lab.io.decode.record import applied_rotation, needed_rotation
from mtcnn_lab.io.paths import PathLike, path_text, reencode_hint, show_path

__all__ = ["compare_profiles", "rotation_words"]


def rotation_words(turned: int, needed: int) -> str:
    """What a clockwise turn of ``turned`` degrees does to frames that need ``needed`` to be upright."""
    off = (turned - needed) % 360
    if off == 0:
        return "upright"
    return {90: "turned 90 degrees clockwise from upright", 180: "upside down",
            270: "turned 90 degrees counter-clockwise from upright"}[off]


def _first_frame(path: str, profile_name: str) -> np.ndarray:
    profile = get_profile(profile_name)
    reader = PyAVReader(path, profile) if profile.reader == "pyav" else cv2.VideoCapture(path)
    try:
        ok, frame = reader.read() if profile.reader == "opencv" else (reader.grab(), None)
        if profile.reader == "pyav" and ok:
            ok, frame = reader.retrieve()
    finally:
        reader.release()
    if not ok or frame is None:
        raise InputError(f"the first frame of {show_path(path)} does not decode with --decode {profile_name}; "
                         f"{reencode_hint(path)}")
    return frame


def compare_profiles(path: PathLike, info: VideoInfo | None = None) -> dict:
    """For each profile: ``rotation_applied`` (clockwise degrees), ``picture`` (upright, upside down...),
    ``shape`` of its frames, the SHA-256 of its first frame, and ``levels_from_upright`` (max and mean
    absolute difference in 8-bit levels of its first frame from ``upright``'s, turned alike; None when
    the picture is not upright). ``notes``: one sentence per disagreement, for people."""
    p = path_text(path)
    info = probe_video(p) if info is None else info
    needed = needed_rotation(info)
    upright = _first_frame(p, "upright").astype(np.int16)
    rows, notes = {}, []
    for name in PROFILES:
        frame = _first_frame(p, name)
        turned = applied_rotation(get_profile(name), info)
        picture = rotation_words(turned, needed)
        diff = None
        if picture == "upright" and frame.shape == upright.shape:
            d = np.abs(frame.astype(np.int16) - upright)
            diff = {"max": int(d.max()), "mean": round(float(d.mean()), 3)}
        rows[name] = {"rotation_applied": turned, "picture": picture, "shape": list(frame.shape),
                      "first_frame_sha256": hashlib.sha256(frame.tobytes()).hexdigest(),
                      "levels_from_upright": diff}
        if picture != "upright":
            notes.append(f"{name} gives this video's frames {picture}")
        elif diff is not None and diff["max"] > 0:
            notes.append(f"{name}'s colours differ from the tagged {info.matrix} ({info.range} range) picture by "
                         f"up to {diff['max']} levels (mean {diff['mean']}) on the first frame")
    return {"profiles": rows, "notes": notes}
