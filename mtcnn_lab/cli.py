"""The ``mtcnn-lab`` command: ``detect`` images and videos, manage the OpenFace ``models`` cache.

Errors the user can fix are printed as one line (``error: ...``) with exit code 2; a ``detect``
run over several paths reports a bad path in its result entry, processes the others and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from mtcnn_lab.errors import MtcnnLabError, OutputExists, ParameterError
from mtcnn_lab.files import write_json
from mtcnn_lab.version import __version__

log = logging.getLogger("mtcnn_lab")


def check_json_out(out: Path, force: bool) -> None:
    """Raise ParameterError when ``out`` cannot be used as the ``--json`` file."""
    if out.is_dir():
        raise ParameterError(f"{out} is a directory; give a file path for --json, e.g. {out / 'detections.json'}")
    if out.exists() and not force:
        raise ParameterError(f"{out} already exists; pass --force to replace it or choose another --json path")


def write_json_out(data: dict, out: Path, force: bool) -> None:
    """Write the ``--json`` file atomically; a failure names the path and the fix."""
    check_json_out(out, force)
    try:
        write_json(out, data, overwrite=force)
    except OutputExists as err:
        raise ParameterError(f"{out} already exists; pass --force to replace it or choose another --json path") from err
    except OSError as err:
        raise ParameterError(f"cannot write {out} ({err.strerror or err}); choose a --json path "
                             "in a writable folder") from None


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


def partial_file(json_out: str | None, video: str) -> Path | None:
    """Where ``detect --every`` keeps a video's per-frame results until the final JSON is written
    (a hidden JSON Lines file beside ``--json``; a re-run resumes from it)."""
    if json_out is None:
        return None
    out = Path(json_out)
    return out.with_name(f".{out.name}.{Path(video).name}.frames.jsonl")


def cmd_detect(args: argparse.Namespace) -> int:
    """Run the detector on every path; write the results JSON (the C++ reference's fields); 1 if any failed."""
    from mtcnn_lab.detector import MTCNN
    from mtcnn_lab.io.entries import error_entry, result_entry, result_meta
    from mtcnn_lab.io.frames import is_video, iter_inputs
    from mtcnn_lab.video.stream import detect_video

    if args.json is not None:  # fail before the run, not after it
        check_json_out(Path(args.json), args.force)
    if args.every is not None and args.every < 1:
        raise ParameterError(f"--every must be >= 1, got {args.every}; e.g. --every 30 for one frame in 30")
    if args.workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {args.workers}")
    limit_threads(args.threads)
    streamed = {p for p in args.paths if args.every is not None and is_video(p) and Path(p).is_file()}
    if streamed and args.workers > 1:
        from mtcnn_lab.video.workers import start_fork_server

        start_fork_server()  # it loads its modules while the detector is built here
    detector = MTCNN(backend=args.backend, weights=args.weights, min_face=args.min_face, threads=args.threads)
    log.info("using %s weights from %s", detector.weights.name, detector.weights.source)
    if args.weights == "auto" and not args.quiet:  # say which set "auto" chose
        print(f"weights: {detector.weights.name} ({detector.weights.source}); backend: {detector.backend.name}",
              file=sys.stderr)
    results, failed = [], 0
    quiet_bar = True if args.quiet or len(args.paths) < 2 else None  # None: a bar only on a terminal
    for path in tqdm(args.paths, desc="detect", unit="file", disable=quiet_bar, leave=False):
        if path in streamed:  # every N-th frame of a video: decode and detect in parallel, write as we go
            try:
                entries = list(detect_video(detector, path, every=args.every, jsonl=partial_file(args.json, path),
                                            progress=not args.quiet and sys.stderr.isatty(), workers=args.workers))
            except MtcnnLabError as err:
                failed += 1
                results.append(error_entry(path, None, str(err)))
                print(f"error: {err}", file=sys.stderr)
                continue
            results.extend(entries)
            if not args.quiet:
                print(f"{path}: {len(entries)} frames, {sum(len(e['faces']) for e in entries)} face(s)")
            continue
        for item in iter_inputs([path], positions=args.frames, every=args.every):
            if item.error is not None:
                failed += 1
                entry = error_entry(item.path, item.frame, item.error)
                print(f"error: {item.error}", file=sys.stderr)
            else:
                detections = detector.detect(item.image)
                entry = result_entry(item.path, item.frame, item.image, detections)
                if not args.quiet:
                    where = item.path if item.frame is None else f"{item.path} frame {item.frame}"
                    print(f"{where}: {len(detections)} face(s)")
            results.append(entry)
    if args.json is not None:
        write_json_out({"meta": result_meta(detector), "results": results}, Path(args.json), args.force)
        for path in streamed:  # the final JSON holds them now
            partial_file(args.json, path).unlink(missing_ok=True)
    return 1 if failed else 0


def cmd_models(args: argparse.Namespace) -> int:
    """Show the OpenFace model cache; with ``--accept-license`` download what is missing."""
    from mtcnn_lab.weights.models_cache import cache_status, install_openface_models, license_accepted

    root = Path(args.dir) if args.dir else None
    if license_accepted(args.accept_license):
        install_openface_models(accept_license=True, root=root, progress=not args.quiet)
    rows = cache_status(root)
    for row in rows:
        state = "ok" if row["sha256_ok"] else ("corrupt" if row["present"] else "missing")
        print(f"{row['net']:5s} {state:8s} {row['path']}")
    if all(row["sha256_ok"] for row in rows):
        return 0
    print("error: OpenFace's model files are missing or corrupt (listed above); run `mtcnn-lab models "
          "--accept-license` to download them (non-commercial research license) or use --weights zhang2016",
          file=sys.stderr)
    return 1


def cmd_backends(args: argparse.Namespace) -> int:
    """List every backend: usable here or not, and why; the one ``auto`` picks."""
    from mtcnn_lab.backends.select import AUTO_ORDER, backend_report
    from mtcnn_lab.weights.sets import load_weights

    weights = load_weights(args.weights)
    rows = backend_report(weights)
    usable = {row["backend"] for row in rows if row["available"]}
    auto = next((name for name in AUTO_ORDER if name in usable), None)
    print(f"weights: {weights.name} ({weights.source})")
    for row in rows:
        mark = "yes" if row["available"] else "no "
        detail = f"self-check max |diff| {row['max_abs_diff']:.2g}" if row["available"] else row["reason"]
        pick = "  <- auto" if row["backend"] == auto else ""
        print(f"{row['backend']:16s} {mark}  {row['description']}: {detail}{pick}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Write ONNX or Core ML models of the three nets plus a JSON report into OUTDIR."""
    from mtcnn_lab.weights.sets import load_weights

    weights = load_weights(args.weights)
    outdir = Path(args.outdir)
    if args.to == "onnx":
        from mtcnn_lab.convert.onnx import export_onnx
        from mtcnn_lab.lab.conversion import onnx_report

        paths = export_onnx(weights, outdir, fp16=args.fp16, overwrite=args.overwrite)
        report = onnx_report(weights, paths, fp16=args.fp16)
        name = "onnx_report_fp16.json" if args.fp16 else "onnx_report.json"
        write_json(outdir / name, report, overwrite=True)
        paths["report"] = outdir / name
    else:
        from mtcnn_lab.convert.coreml import convert_coreml

        paths = convert_coreml(weights, outdir, precision="fp16" if args.fp16 else "fp32",
                               compute_units=args.compute_units, overwrite=args.overwrite)
    for key, path in paths.items():
        print(f"{key:6s} {path}")
    return 0


def cmd_workbench(args: argparse.Namespace) -> int:
    """Run the numbered notebooks headless into results/ and print what each wrote."""
    import time

    from mtcnn_lab.lab.workbench import parse_value, run_notebooks

    root = Path(args.root)
    results = Path(args.results) if args.results else root / "results"
    parameters = {name: parse_value(value) for name, value in args.parameter or []}
    start = time.perf_counter()
    runs = run_notebooks(root, only=args.only, quick=args.quick, parameters=parameters, results=results)
    for run in runs:
        print(f"{run.name}: {run.seconds:.0f} s, {len(run.written)} table/figure files -> {run.output}")
        for path in run.written:
            print(f"    {path.relative_to(results.parent) if path.is_relative_to(results.parent) else path}")
    print(f"{len(runs)} notebooks in {time.perf_counter() - start:.0f} s; results in {results}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Time backends (and pymtcnn with ``--pymtcnn``) on the same frames; write the JSON report."""
    from mtcnn_lab.lab.bench import bench_report, dev_frames, path_frames, write_report

    out = Path(args.out) if args.out else Path("results") / "bench" / (
        "backends_vs_pymtcnn.json" if args.pymtcnn else "backends.json")
    if out.is_dir():
        raise ParameterError(f"{out} is a directory; give a file path for --out, e.g. {out / 'bench.json'}")
    for name, value, least in (("--repeats", args.repeats, 1), ("--warmup", args.warmup, 0),
                               ("--limit", args.limit, 1)):
        if value is not None and value < least:
            raise ParameterError(f"{name} must be at least {least}, not {value}")
    if any(t < 1 for t in args.threads):
        raise ParameterError(f"--threads must be at least 1, not {min(args.threads)}")
    if args.paths:
        images, faces, entries = path_frames(args.paths, args.limit)
    else:
        images, faces, entries = dev_frames(args.limit)
    progress = None if args.quiet else (lambda text: print(f"    {text}", file=sys.stderr))
    report = bench_report(images, faces, backends=args.backend, threads=args.threads, repeats=args.repeats,
                          warmup=args.warmup, pymtcnn=args.pymtcnn, pymtcnn_cache=args.pymtcnn_cache,
                          cpp_entries=entries, progress=progress)
    try:
        path = write_report(report, out)
    except OSError as err:
        raise ParameterError(f"cannot write {out} ({err.strerror or err}); choose an --out path "
                             "in a writable folder") from None
    print(f"wrote {path}")
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    """Process every video (and image folder) of a corpus on Dask; 1 if any item failed."""

    if args.workers is not None and args.scheduler is not None:
        raise ParameterError("--workers sizes the local cluster; leave it out with --scheduler")
    for name, value, least in (("--threads", args.threads, 1), ("--retries", args.retries, 0),
                               ("--every", args.every, 1)):
        if value < least:
            raise ParameterError(f"{name} must be at least {least}, not {value}")
    if not args.verbose:  # Dask logs every scheduler and worker event at INFO; read when dask is imported
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from mtcnn_lab.corpus import find_corpus, run_corpus

    source = Path(args.source)
    items = find_corpus(source)
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ParameterError("corpus needs Dask: pip install 'mtcnn-lab[dask]'") from None
    root = source if source.is_dir() else None
    rows = run_corpus(items, args.out, scheduler=args.scheduler, n_workers=args.workers, every=args.every,
                      backend=args.backend, weights=args.weights, retries=args.retries, threads=args.threads,
                      root=root, progress=not args.quiet)
    for row in rows:
        if row["status"] == "error":
            print(f"error: {row['item']}: {row['error']}", file=sys.stderr)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "error")}
    print(f"{len(rows)} items: {counts['ok']} ok, {counts['skipped']} skipped (already done), "
          f"{counts['error']} failed; summary in {Path(args.out) / 'summary.csv'}")
    return 1 if counts["error"] else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mtcnn-lab``."""
    parser = argparse.ArgumentParser(prog="mtcnn-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mtcnn-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is being done")
    sub = parser.add_subparsers(dest="command", required=True)

    detect = sub.add_parser("detect", help="detect faces in images and videos")
    detect.add_argument("paths", nargs="+", help="image or video files")
    detect.add_argument("--backend", default="auto",
                        help="auto (default: the best that passes its self-check) or a name from `mtcnn-lab backends`")
    detect.add_argument("--weights", default="auto", choices=["auto", "openface", "zhang2016"],
                        help="weight set (default auto: OpenFace's when installed)")
    detect.add_argument("--min-face", type=float, default=60.0, help="smallest face in px (default 60)")
    group = detect.add_mutually_exclusive_group()
    group.add_argument("--frames", type=parse_positions, default=None,
                       help="video frames by position, e.g. 0.2,0.5,0.8 (the default for videos)")
    group.add_argument("--every", type=int, default=None, help="every N-th video frame")
    detect.add_argument("--json", metavar="OUT", help="write all results to this JSON file")
    detect.add_argument("--force", action="store_true", help="replace an existing --json file")
    detect.add_argument("--threads", type=int, default=None,
                        help="threads of the detector in this process: runtime, resizing, BLAS, OpenCV (default: all)")
    detect.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="detection processes for videos run with --every (default: the CPU count, here "
                             "%(default)s; 1: detect in this process)")
    detect.add_argument("-q", "--quiet", action="store_true", help="no per-image lines or progress")
    detect.set_defaults(func=cmd_detect)

    backends = sub.add_parser("backends", help="list the runtimes usable here and why the others are not")
    backends.add_argument("--weights", default="auto", choices=["auto", "openface", "zhang2016"])
    backends.set_defaults(func=cmd_backends)

    convert = sub.add_parser("convert", help="write ONNX or Core ML models and a JSON report")
    convert.add_argument("outdir", help="output folder")
    convert.add_argument("--to", required=True, choices=["onnx", "coreml"])
    convert.add_argument("--fp16", action="store_true", help="FP16 models (inputs and outputs stay FP32)")
    convert.add_argument("--weights", default="auto", choices=["auto", "openface", "zhang2016"])
    convert.add_argument("--compute-units", default="ALL", choices=["ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY"],
                         help="Core ML only: default compute units stored in the models")
    convert.add_argument("--overwrite", action="store_true", help="replace existing model files")
    convert.set_defaults(func=cmd_convert)

    bench = sub.add_parser("workbench", help="run the numbered notebooks headless into results/")
    bench.add_argument("--quick", action="store_true", help="small smoke run (a few frames, few repeats)")
    bench.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help="notebook parameter (repeatable), e.g. -p manifest /data/study/manifest.json")
    bench.add_argument("--only", nargs="+", metavar="NN", help="run only notebooks whose names start so, e.g. 01 05")
    bench.add_argument("--root", default=".", help="the repository (notebooks/, data/; default: this folder)")
    bench.add_argument("--results", help="results folder (default: ROOT/results)")
    bench.set_defaults(func=cmd_workbench)

    timing = sub.add_parser("bench", help="time backends (and pymtcnn) on the same frames; write a JSON report")
    timing.add_argument("paths", nargs="*", help="images/videos (default: the dev inputs of data/manifest.json)")
    timing.add_argument("--backend", action="append", default=None, metavar="B",
                        help="a backend to time, repeatable; the first is the ratios' baseline (default: the "
                             "CPU backend auto picks)")
    timing.add_argument("--pymtcnn", action="store_true",
                        help="also time pymtcnn 1.2.0's ONNX CPU backend (see benchmarks/README.md)")
    timing.add_argument("--pymtcnn-cache", default=None, help="pymtcnn's model cache root (default: the bench one)")
    timing.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    timing.add_argument("--repeats", type=int, default=5, help="timed calls per frame and runner (default 5)")
    timing.add_argument("--warmup", type=int, default=1, help="untimed calls per frame and runner (default 1)")
    timing.add_argument("--limit", type=int, default=None, help="only this many frames")
    timing.add_argument("--out", default=None,
                        help="JSON report (default results/bench/backends.json, or backends_vs_pymtcnn.json "
                             "with --pymtcnn); replaced when it exists")
    timing.add_argument("-q", "--quiet", action="store_true", help="no per-frame progress")
    timing.set_defaults(func=cmd_bench)

    corpus = sub.add_parser("corpus", help="process every video of a folder or manifest on Dask, one JSON per video")
    corpus.add_argument("source", metavar="DIR_OR_MANIFEST", help="folder (searched recursively) or manifest .json")
    corpus.add_argument("--out", required=True, metavar="OUTDIR", help="result files, summary.json and summary.csv")
    corpus.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="an existing Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)")
    corpus.add_argument("--workers", type=int, default=None, help="local cluster size (default: the CPU count)")
    corpus.add_argument("--every", type=int, default=1, help="every N-th video frame (default 1: all)")
    corpus.add_argument("--backend", default="auto", help="as for detect (default auto)")
    corpus.add_argument("--weights", default="auto", choices=["auto", "openface", "zhang2016"])
    corpus.add_argument("--threads", type=int, default=1, help="detector threads per worker (default 1)")
    corpus.add_argument("--retries", type=int, default=2, help="retries of a failing task (default 2)")
    corpus.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    corpus.set_defaults(func=cmd_corpus)

    models = sub.add_parser("models", help="show or fetch OpenFace's model files (non-commercial license)")
    models.add_argument("--accept-license", action="store_true",
                        help="accept OpenFace's non-commercial license and download missing files")
    models.add_argument("--dir", help="cache root (default $OPENFACE_MODELS_DIR or the user data dir)")
    models.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtcnn-lab`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except MtcnnLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
