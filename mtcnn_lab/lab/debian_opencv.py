"""Debian's OpenCV 4.6 (``apt-get install python3-opencv``; FFmpeg 5.1) as a reference decoder: the
``cv::VideoCapture`` of a C++ OpenFace built on Debian 12, run in a ``/usr/bin/python3`` subprocess, so
that ``--decode opencv-4.6`` can be checked frame for frame against the real thing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

DEBIAN_PYTHON = Path("/usr/bin/python3")
"""Debian's own interpreter, which imports Debian's ``cv2``."""

_ENV = {"PATH": "/usr/bin:/bin"}  # nothing of this project's environment (PYTHONPATH, a venv) leaks in

_DUMP = r"""
import hashlib, json, sys
import cv2
import numpy as np
cap = cv2.VideoCapture(sys.argv[1])
out = {"version": cv2.__version__, "opened": cap.isOpened(), "orientation": cap.get(cv2.CAP_PROP_ORIENTATION_META),
       "hashes": [], "times_ms": [], "shape": None}
frames = []
while True:  # as OpenFace reads a video: until the first failed read
    ok, frame = cap.read()
    if not ok:
        break
    out["hashes"].append(hashlib.sha256(frame.tobytes()).hexdigest())
    out["times_ms"].append(cap.get(cv2.CAP_PROP_POS_MSEC))
    out["shape"] = list(frame.shape)
    frames.append(frame)
if len(sys.argv) > 2 and frames:
    np.save(sys.argv[2], np.stack(frames))
print(json.dumps(out))
"""


def debian_opencv_version() -> str | None:
    """The version of Debian's OpenCV, or None when ``python3-opencv`` is not installed."""
    if not DEBIAN_PYTHON.is_file():
        return None
    done = subprocess.run([str(DEBIAN_PYTHON), "-c", "import cv2; print(cv2.__version__)"], capture_output=True,
                          text=True, env=_ENV)
    return done.stdout.strip() if done.returncode == 0 else None


def debian_decode(path: Path, keep_frames: Path | None = None) -> dict:
    """Decode ``path`` with Debian's OpenCV until its first failed read: ``hashes`` (SHA-256 of each BGR
    frame), ``times_ms`` (CAP_PROP_POS_MSEC), ``shape``, ``orientation`` (CAP_PROP_ORIENTATION_META), and
    the frames saved to ``keep_frames`` (.npy) when given."""
    args = [str(DEBIAN_PYTHON), "-c", _DUMP, str(path)] + ([str(keep_frames)] if keep_frames else [])
    done = subprocess.run(args, capture_output=True, text=True, env=_ENV, check=True)
    return json.loads(done.stdout)
