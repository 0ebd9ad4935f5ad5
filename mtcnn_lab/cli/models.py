"""``mtcnn-lab models``: show or fetch OpenFace's model files (non-commercial license)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtcnn_lab.files import writable_folder


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``models`` and its options."""
    parser = sub.add_parser("models", help="show or fetch OpenFace's model files (non-commercial license)")
    parser.add_argument("--accept-license", action="store_true",
                        help="accept OpenFace's non-commercial license and download missing files")
    parser.add_argument("--dir", help="cache root (default $OPENFACE_MODELS_DIR or the user data dir)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Show the OpenFace model cache; with ``--accept-license`` download what is missing."""
    from mtcnn_lab.weights.models_cache import cache_status, install_openface_models, license_accepted

    root = Path(args.dir) if args.dir else None
    if license_accepted(args.accept_license):
        if root is not None:
            writable_folder(root, "choose another --dir")
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
