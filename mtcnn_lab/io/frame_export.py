"""Video frames as lossless PNG files with a manifest: the safe way to give C++ OpenFace
(``FaceLandmarkImg -fdir``) and mtcnn-lab the very same pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
from tqdm import tqdm

from mtcnn_lab.errors import InputError, ParameterError
from mtcnn_lab.files import write_atomic, write_json
from mtcnn_lab.io.decode.profiles import get_profile
from mtcnn_lab.io.decode.record import decode_record
from mtcnn_lab.io.images import pixels_sha256
from mtcnn_lab.io.paths import PathLike, check_file, path_text, show_path
from mtcnn_lab.io.videos import Decode, check_every, decode_frames, frame_time_s, open_video

__all__ = ["MANIFEST_NAME", "frame_file_name", "export_frames"]

MANIFEST_NAME = "frames.json"
"""The manifest :func:`export_frames` writes beside the PNG files."""


def frame_file_name(index: int) -> str:
    """The PNG file of frame ``index`` (0-based): ``frame_000042.png``."""
    return f"frame_{index:06d}.png"


def _check_out_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{out} is a file; give a folder for the frames, e.g. {out.with_suffix('')}_frames")
    taken = sorted(out.glob("frame_*.png")) + ([out / MANIFEST_NAME] if (out / MANIFEST_NAME).exists() else [])
    if taken and not force:
        raise ParameterError(f"{out} already holds frames ({taken[0].name}, ...); pass --force to replace them "
                             "or choose an empty folder")


def export_frames(video: PathLike, out_dir: PathLike, every: int = 1, decode: Decode = None,
                  force: bool = False, progress: bool = True) -> dict:
    """Write every ``every``-th frame of ``video``, decoded with the profile ``decode``, to ``out_dir`` as
    lossless PNG (BGR 8-bit, :func:`frame_file_name`), and the manifest ``frames.json``: the decode
    record and, per frame, ``index`` (0-based, decode order), ``timestamp_s`` (presentation time),
    ``pixels_bgr_sha256`` and ``file``. Returns the manifest.

    Existing frames or manifest in ``out_dir`` raise ParameterError unless ``force``; with ``force`` the
    old frame files are removed first, so the folder never mixes two runs.
    """
    path = path_text(video)
    check_file(path)
    profile = get_profile(decode)
    step = check_every(every)
    out = Path(out_dir)
    _check_out_dir(out, force)
    record = decode_record(path, profile)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("frame_*.png"):
            old.unlink()
    except OSError as err:
        raise ParameterError(f"cannot write to {out} ({err.strerror or err}); choose a writable folder") from None
    reader = open_video(path, decode=profile)
    frames = []
    bar = tqdm(total=record["header_frames"] // step or None, desc=Path(path).name, unit="frame",
               disable=not progress, leave=False)
    try:
        for index, frame in decode_frames(reader, path, None, step):
            ok, png = cv2.imencode(".png", frame)
            if not ok:
                raise InputError(f"frame {index} of {show_path(path)} could not be encoded as PNG")
            name = frame_file_name(index)
            write_atomic(out / name, png.tobytes(), overwrite=True)
            frames.append({"index": index, "timestamp_s": frame_time_s(reader),
                           "pixels_bgr_sha256": pixels_sha256(frame), "file": name})
            bar.update(1)
    finally:
        bar.close()
    record["frames"] = len(frames)
    manifest = {"video": path, "every": step, "decoding": record, "frames": frames}
    write_json(out / MANIFEST_NAME, manifest, overwrite=True)
    return manifest
