"""How the decoder changes OpenFace's results on phone video (notebook 07): one clip detected under
every decode profile, and the faces compared between profiles in the upright picture's coordinates
(the conclusion in words: ``mtcnn_lab.lab.conclusions.decoder_conclusion``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtcnn_lab.detections import Detections, Detector
from mtcnn_lab.io.decode.profiles import clockwise_rotation, get_profile
from mtcnn_lab.io.decode.record import decode_record
from mtcnn_lab.io.videos import iter_video_frames
from mtcnn_lab.lab.agreement import match_faces

__all__ = ["ProfileRun", "detect_each_profile", "to_upright_boxes", "compare_profiles_table"]


@dataclass(frozen=True)
class ProfileRun:
    """One clip detected under one profile: its decode ``record``, the detections of every used frame
    (``frames``: their 0-based indices), the first frame's pixels (for figures) and ``turn``, the
    clockwise degrees this profile's frames are away from upright."""

    profile: str
    record: dict
    frames: tuple[int, ...]
    detections: tuple[Detections, ...]
    first_frame: np.ndarray
    turn: int


def detect_each_profile(detector: Detector, clip: Path, profiles: Sequence[str], every: int = 1
                        ) -> dict[str, ProfileRun]:
    """Decode ``clip`` with each profile and detect faces on every ``every``-th frame."""
    runs = {}
    for profile in profiles:
        record = decode_record(clip, profile)
        frames, found, first = [], [], None
        for index, frame in iter_video_frames(clip, step=every, decode=profile):
            frames.append(index)
            found.append(detector.detect(frame))
            first = frame if first is None else first
        needed = clockwise_rotation(get_profile("upright"), record["display_rotation"])
        turn = (record["rotation_applied"] - needed) % 360
        runs[profile] = ProfileRun(profile, {**record, "frames": len(frames)}, tuple(frames), tuple(found), first,
                                   turn)
    return runs


def to_upright_boxes(boxes: np.ndarray, turn: int, width: int, height: int) -> np.ndarray:
    """Boxes (x, y, w, h px) of a frame ``width``×``height`` that is turned ``turn`` degrees clockwise from
    upright, in the upright picture's coordinates (continuous pixel-edge coordinates)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    x, y, w, h = b.T
    if turn == 0:
        return b.copy()
    if turn == 180:
        return np.stack([width - x - w, height - y - h, w, h], axis=1)
    if turn == 90:  # frame = upright turned clockwise: upright x = frame y, upright y = frame width - frame x
        return np.stack([y, width - (x + w), h, w], axis=1)
    if turn == 270:
        return np.stack([height - (y + h), x, h, w], axis=1)
    raise ValueError(f"turn must be 0, 90, 180 or 270 degrees, not {turn}")


def _upright(run: ProfileRun, k: int) -> np.ndarray:
    height, width = run.first_frame.shape[:2]
    return to_upright_boxes(run.detections[k].boxes, run.turn, width, height)


def compare_profiles_table(runs: Mapping[str, ProfileRun], baseline: str, min_iou: float = 0.3) -> list[dict]:
    """One row per profile against ``baseline``: faces found, frames with the same count, matched faces,
    mean and minimum IoU and the largest box difference (px), boxes compared in upright coordinates."""
    base = runs[baseline]
    rows = []
    for name, run in runs.items():
        same, ious, px, faces = 0, [], [], 0
        for k in range(len(base.frames)):
            a, b = _upright(run, k), _upright(base, k)
            faces += len(a)
            same += len(a) == len(b)
            for i, j, value in match_faces(a, b, min_iou):
                ious.append(value)
                px.append(float(np.abs(a[i] - b[j]).max()))
        base_faces = sum(len(d) for d in base.detections)
        rows.append({"profile": name, "picture": "upright" if run.turn == 0 else f"turned {run.turn} cw",
                     "frames": len(run.frames), "faces": faces, "baseline_faces": base_faces,
                     "frames_same_count": same, "matched": len(ious),
                     "iou_mean": float(np.mean(ious)) if ious else None,
                     "iou_min": float(np.min(ious)) if ious else None,
                     "max_px": float(np.max(px)) if px else None})
    return rows

