"""``mtcnn-lab detect``: detect faces in images and videos, write the results JSON."""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from mtcnn_lab.cli.options import (
    WEIGHT_SETS,
    add_decode_arguments,
    check_output_file,
    limit_threads,
    parse_positions,
    write_csv_out,
    write_json_out,
)
from mtcnn_lab.errors import MtcnnLabError, ParameterError, WorkerLost
from mtcnn_lab.params import CascadeParams

if TYPE_CHECKING:
    from mtcnn_lab.detector import MTCNN

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``detect`` and its options."""
    parser = sub.add_parser("detect", help="detect faces in images and videos")
    parser.add_argument("paths", nargs="+", help="image or video files")
    parser.add_argument("--backend", default="auto",
                        help="auto (default: the best that passes its self-check) or a name from `mtcnn-lab backends`")
    parser.add_argument("--weights", default="auto", choices=WEIGHT_SETS,
                        help="weight set (default auto: OpenFace's when installed)")
    parser.add_argument("--min-face", type=float, default=CascadeParams.min_face,
                        help="smallest face in px (default %(default)g)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--frames", type=parse_positions, default=None,
                       help="video frames by position, e.g. 0.2,0.5,0.8 (the default for videos)")
    group.add_argument("--every", type=int, default=None, help="every N-th video frame")
    add_decode_arguments(parser)
    parser.add_argument("--json", metavar="OUT", help="write all results to this JSON file")
    parser.add_argument("--csv", metavar="OUT", help="write one row per face (and per frame without faces) to this "
                                                     "CSV file: path, frame, timestamp_s, face, confidence, x, y, "
                                                     "w, h, lm1_x .. lm5_y")
    parser.add_argument("--force", action="store_true", help="replace an existing --json or --csv file")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of the detector in this process: runtime, resizing, BLAS, OpenCV (default: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="detection processes for videos run with --every (default: the CPU count, here "
                             "%(default)s; 1: detect in this process)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-image lines or progress")
    parser.set_defaults(func=run)


def _partial_file(out: str | None, video: str, decode: str) -> Path | None:
    """Where ``detect --every`` keeps a video's per-frame results until the final files are written (a hidden
    JSON Lines file beside ``out``, the ``--json`` file, else the ``--csv`` one; a re-run resumes from it).
    Named after the video's resolved path and the decode profile too, so two videos of one name in different
    folders, or one video decoded two ways, never share one. None without an output file."""
    if out is None:
        return None
    anchor = Path(out)
    tag = hashlib.sha256(os.fsencode(Path(video).resolve())).hexdigest()[:12]
    return anchor.with_name(f".{anchor.name[:60]}.{Path(video).name[:60]}.{tag}.{decode}.frames.jsonl")  # tag: unique


def _decoding(path: str, decode: str, entries: list[dict], quiet: bool) -> dict | None:
    """The decode record of video ``path`` (frames decoded: the entries without an error), and the
    one warning a run gives when its frames are not upright; None when the video cannot be probed."""
    from mtcnn_lab.io.decode.record import decode_record

    try:
        record = decode_record(path, decode)
    except MtcnnLabError:
        return None  # the video's own error entry says why
    record["frames"] = sum("error" not in e for e in entries)
    if not record["upright"] and not quiet:
        print(f"warning: {path}: with --decode {decode} the frames are turned {record['rotation_applied']} "
              f"degrees clockwise, not as the video's display matrix says (--decode upright shows them "
              "upright; `mtcnn-lab probe` explains)", file=sys.stderr)
    return record


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the workers are stopped and the files closed on the way out
    (a BaseException: no ``except Exception`` on the way catches it)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def run(args: argparse.Namespace) -> int:
    """Run the detector on every path; write the results JSON (the C++ reference's fields); 1 if any failed.
    SIGTERM stops the run as Ctrl-C does (the per-frame results written so far stay): one line, exit code 143."""
    # signal handlers live in the main thread only; a SIGTERM ignored or handled by the caller stays so
    handle = (threading.current_thread() is threading.main_thread()
              and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
    if handle:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _run(args)
    except _Terminated:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if handle:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run(args: argparse.Namespace) -> int:
    from mtcnn_lab.detector import MTCNN
    from mtcnn_lab.io.decode.profiles import get_profile
    from mtcnn_lab.io.entries import remove_jsonl, result_meta
    from mtcnn_lab.io.paths import is_video

    if args.json is not None:  # fail before the run, not after it
        check_output_file(Path(args.json), args.force, "--json", args.paths)
    if args.csv is not None:
        check_output_file(Path(args.csv), args.force, "--csv", args.paths)
        if args.json is not None and os.path.realpath(args.csv) == os.path.realpath(args.json):
            raise ParameterError(f"--json and --csv are both {args.json}; give each its own file")
    if args.every is not None and args.every < 1:
        raise ParameterError(f"--every must be at least 1, not {args.every}; e.g. --every 30 for one frame in 30")
    if args.workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {args.workers}")
    decode = get_profile(args.decode).name
    limit_threads(args.threads)
    streamed = {p for p in args.paths if args.every is not None and is_video(p) and Path(p).is_file()}
    if streamed and args.workers > 1:
        from mtcnn_lab.video.workers import start_fork_server

        start_fork_server()  # it loads its modules while the detector is built here
    with MTCNN(backend=args.backend, weights=args.weights, min_face=args.min_face, threads=args.threads) as detector:
        log.info("using %s weights from %s", detector.weights.name, detector.weights.source)
        if args.weights == "auto" and not args.quiet:  # say which set "auto" chose
            print(f"weights: {detector.weights.name} ({detector.weights.source}); backend: {detector.backend.name}",
                  file=sys.stderr)
        results, failed, decoding = _detect_all(args, detector, streamed, decode)
        meta = result_meta(detector, decode=decode, decoding={p: r for p, r in decoding.items() if r is not None})
    if args.json is not None:
        write_json_out({"meta": meta, "results": results}, Path(args.json), args.force)
    if args.csv is not None:
        write_csv_out(results, Path(args.csv), args.force,
                      {p: r["fps"] for p, r in decoding.items() if r is not None})
    for path in streamed & decoding.keys():  # the videos done: the output files hold their frames now
        partial = _partial_file(args.json or args.csv, path, decode)
        if partial is not None:
            remove_jsonl(partial)
    return 1 if failed else 0


def _prepare_partial(partial: Path, detector: MTCNN, video: str, decode: str, frame_hashes: bool, quiet: bool) -> None:
    """Before a video's run: drop the hidden per-frame file of an earlier run made with other settings (another
    detector, decoding, hash setting or video file), saying so; say how many frames an interrupted run left to
    resume."""
    from mtcnn_lab.io.entries import discard_stale, read_done_frames
    from mtcnn_lab.video.stream import run_settings

    dropped = discard_stale(partial, run_settings(detector, video, decode, frame_hashes))
    resumed = len(read_done_frames(partial))
    if not quiet and dropped:
        print(f"{video}: {dropped} frame(s) of an earlier run that this one cannot resume (other settings) "
              "discarded", file=sys.stderr)
    if not quiet and resumed:
        print(f"{video}: resuming after {resumed} frame(s) of an interrupted run", file=sys.stderr)


def _detect_all(args: argparse.Namespace, detector: MTCNN, streamed: set[str], decode: str
                ) -> tuple[list[dict], int, dict[str, dict | None]]:
    """Every input of ``args.paths`` through ``detector``: the result entries, how many inputs failed, and per
    video its decoding summary (:func:`_decoding`). Videos in ``streamed`` go through ``detect_video``."""
    from mtcnn_lab.io.entries import error_entry, result_entry
    from mtcnn_lab.io.images import pixels_sha256
    from mtcnn_lab.io.inputs import iter_inputs
    from mtcnn_lab.video.stream import detect_video

    results: list[dict] = []
    failed, decoding = 0, {}
    quiet_bar = True if args.quiet or len(args.paths) < 2 else None  # None: a bar only on a terminal
    for path in tqdm(args.paths, desc="detect", unit="file", disable=quiet_bar, leave=False):
        if path in streamed:  # every N-th frame of a video: decode and detect in parallel, write as we go
            partial = _partial_file(args.json or args.csv, path, decode)
            try:
                if partial is not None:
                    _prepare_partial(partial, detector, path, decode, args.frame_hashes, args.quiet)
                entries = list(detect_video(detector, path, every=args.every, jsonl=partial,
                                            progress=not args.quiet and sys.stderr.isatty(), workers=args.workers,
                                            decode=decode, frame_hashes=args.frame_hashes))
            except MtcnnLabError as err:  # the video's frames written so far stay in its partial file
                failed += 1
                message = str(err)
                if isinstance(err, WorkerLost):
                    message = (f"{path}: {err}, e.g. killed when memory ran out; run it again with fewer --workers"
                               + (": it resumes after the frames done" if partial is not None else ""))
                results.append(error_entry(path, None, message))
                print(f"error: {message}", file=sys.stderr)
                continue
            results.extend(entries)
            decoding[path] = _decoding(path, decode, entries, args.quiet)
            if not args.quiet:
                print(f"{path}: {len(entries)} frames, {sum(len(e['faces']) for e in entries)} face(s)")
            continue
        first = len(results)
        for item in iter_inputs([path], positions=args.frames, every=args.every, decode=decode):
            if item.error is not None:
                failed += 1
                entry = error_entry(item.path, item.frame, item.error)
                print(f"error: {item.error}", file=sys.stderr)
            else:
                detections = detector.detect(item.image)
                entry = result_entry(item.path, item.frame, item.image, detections)
                if args.frame_hashes and item.frame is not None:
                    entry["pixels_bgr_sha256"] = pixels_sha256(item.image)
                if not args.quiet:
                    where = item.path if item.frame is None else f"{item.path} frame {item.frame}"
                    print(f"{where}: {len(detections)} face(s)")
            results.append(entry)
        if any(e.get("frame") is not None for e in results[first:]):  # a video
            decoding[path] = _decoding(path, decode, results[first:], args.quiet)
    return results, failed, decoding
