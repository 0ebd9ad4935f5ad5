"""What several ``mtcnn-lab`` subcommands share: weight-set names, the ``--json`` file, frame positions, threads."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from mtcnn_lab.errors import OutputExists, ParameterError
from mtcnn_lab.files import writable_folder, write_json
from mtcnn_lab.weights.sets import WEIGHT_SET_NAMES

WEIGHT_SETS = ["auto", *WEIGHT_SET_NAMES]
"""The ``--weights`` choices."""


def check_output_file(out: Path, force: bool, option: str = "--json", inputs: Sequence[str] = ()) -> None:
    """Raise ParameterError, before any work, when ``out`` cannot be used as the ``option`` (``--json``, ``--csv``,
    ``--out``) file: a folder, an existing file without ``force``, one of the ``inputs``, or a place this process
    cannot write (a probe file is written and removed in its folder, or the nearest existing parent; nothing is
    created)."""
    example = out / ("detections" + (".csv" if option == "--csv" else ".json"))
    if out.is_dir():
        raise ParameterError(f"{out} is a directory; give a file path for {option}, e.g. {example}")
    if any(_same_file(out, path) for path in inputs):
        raise ParameterError(f"{out} is also one of the inputs; choose another {option} path")
    if out.exists() and not force:
        raise ParameterError(f"{out} already exists; pass --force to replace it or choose another {option} path")
    writable_folder(out.parent, f"choose another {option} path", out, create=False)  # created when written


def _same_file(out: Path, path: str) -> bool:
    """Whether ``out`` is the existing file ``path``."""
    try:
        return os.path.samefile(out, path)
    except OSError:  # either does not exist (or cannot be read): not the same file
        return False


def write_json_out(data: dict, out: Path, force: bool) -> None:
    """Write the ``--json`` file atomically; a failure names the path and the fix."""
    _write_out(lambda: write_json(out, data, overwrite=force), out, force, "--json")


def write_csv_out(entries: list[dict], out: Path, force: bool, fps: dict) -> None:
    """Write the ``--csv`` face table (:mod:`mtcnn_lab.io.face_table`) atomically; a failure names the path
    and the fix."""
    from mtcnn_lab.io.face_table import write_face_csv

    _write_out(lambda: write_face_csv(entries, out, fps, overwrite=force), out, force, "--csv")


def _write_out(write, out: Path, force: bool, option: str) -> None:
    check_output_file(out, force, option)
    try:
        write()
    except OutputExists as err:
        raise ParameterError(f"{out} already exists; pass --force to replace it or choose another {option} path") \
            from err
    except OSError as err:
        raise ParameterError(f"cannot write {out} ({err.strerror or err}); choose a {option} path "
                             "in a writable folder") from None


def add_decode_arguments(parser: argparse.ArgumentParser, hashes: bool = True) -> None:
    """``--decode PROFILE`` (and ``--frame-hashes`` unless ``hashes`` is False)."""
    from mtcnn_lab.io.decode.profiles import DEFAULT_DECODE, PROFILE_NAMES

    parser.add_argument("--decode", default=DEFAULT_DECODE, choices=PROFILE_NAMES, metavar="PROFILE",
                        help=f"how videos are decoded: {', '.join(PROFILE_NAMES)} (default %(default)s, the C++ "
                             "reference's OpenCV; `mtcnn-lab probe VIDEO` shows how they differ)")
    if hashes:
        parser.add_argument("--frame-hashes", action="store_true",
                            help="give each video frame's entry the SHA-256 of its BGR pixels "
                                 "(pixels_bgr_sha256), to check against a C++ run")


def parse_positions(text: str) -> tuple[float, ...]:
    """``"0.2,0.5,0.8"`` -> ``(0.2, 0.5, 0.8)`` (argparse type)."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers, "
                                         "e.g. 0.2,0.5,0.8") from None


def limit_threads(threads: int | None) -> None:
    """Pin BLAS and OpenCV to ``threads`` threads (OpenFace's reference runs on 1)."""
    if threads is None:
        return
    if threads < 1:
        raise ParameterError(f"--threads must be at least 1, not {threads}")
    import cv2
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    cv2.setNumThreads(threads)
