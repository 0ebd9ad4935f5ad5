"""``mtcnn-lab corpus``: process every video of a folder or manifest on Dask, one result file per item."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mtcnn_lab.cli.options import WEIGHT_SETS, add_decode_arguments
from mtcnn_lab.errors import ParameterError
from mtcnn_lab.io.paths import show_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``corpus`` and its options."""
    parser = sub.add_parser("corpus", help="process every video of a folder or manifest on Dask, one JSON per video")
    parser.add_argument("source", metavar="DIR_OR_MANIFEST", help="folder (searched recursively) or manifest .json")
    parser.add_argument("--out", required=True, metavar="OUTDIR", help="result files, summary.json and summary.csv")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="an existing Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)")
    parser.add_argument("--workers", type=int, default=None, help="local cluster size (default: the CPU count)")
    parser.add_argument("--every", type=int, default=1, help="every N-th video frame (default 1: all)")
    parser.add_argument("--backend", default="auto", help="as for detect (default auto)")
    add_decode_arguments(parser, hashes=False)
    parser.add_argument("--weights", default="auto", choices=WEIGHT_SETS)
    parser.add_argument("--threads", type=int, default=1, help="detector threads per worker (default 1)")
    parser.add_argument("--retries", type=int, default=2, help="retries of a failing task (default 2)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Process every video (and image folder) of a corpus on Dask; 1 if any item failed."""

    if args.workers is not None and args.scheduler is not None:
        raise ParameterError("--workers sizes the local cluster; leave it out with --scheduler")
    for name, value, least in (("--threads", args.threads, 1), ("--retries", args.retries, 0),
                               ("--every", args.every, 1), ("--workers", args.workers, 1)):
        if value is not None and value < least:
            raise ParameterError(f"{name} must be at least {least}, not {value}")
    if not args.verbose:  # Dask logs every scheduler and worker event at INFO; read when dask is imported
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from mtcnn_lab.corpus import find_corpus, run_corpus
    from mtcnn_lab.io.manifests import manifest_videos

    source = Path(args.source)
    items = find_corpus(source)
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ParameterError("corpus needs Dask: pip install 'mtcnn-lab[dask]'") from None
    root = source if source.is_dir() else manifest_videos(source)[0]  # result names relative to it
    rows = run_corpus(items, args.out, scheduler=args.scheduler, n_workers=args.workers, every=args.every,
                      backend=args.backend, weights=args.weights, retries=args.retries, threads=args.threads,
                      root=root, progress=not args.quiet, decode=args.decode)
    for row in rows:
        if row["status"] == "error":
            print(f"error: {show_path(row['item'])}: {row['error']}", file=sys.stderr)  # escaped: not UTF-8
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "error")}
    print(f"{len(rows)} items: {counts['ok']} ok, {counts['skipped']} skipped (already done), "
          f"{counts['error']} failed; summary in {Path(args.out) / 'summary.csv'}")
    return 1 if counts["error"] else 0
