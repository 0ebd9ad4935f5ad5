"""``mtcnn-lab frames``: a video's frames as lossless PNG files and a manifest (index, time, hash), to
give C++ OpenFace and mtcnn-lab the same pixels."""

from __future__ import annotations

import argparse
import sys

from mtcnn_lab.cli.options import add_decode_arguments
from mtcnn_lab.errors import ParameterError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``frames`` and its options."""
    parser = sub.add_parser("frames", help="write a video's frames as lossless PNG files with a manifest "
                                           "(for FaceLandmarkImg -fdir)")
    parser.add_argument("video", help="a video file")
    parser.add_argument("out_dir", metavar="OUTDIR", help="folder for the PNG files and frames.json")
    parser.add_argument("--every", type=int, default=1, help="every N-th frame (default every frame)")
    add_decode_arguments(parser, hashes=False)
    parser.add_argument("--force", action="store_true", help="replace frames already in OUTDIR")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the frames and the manifest; say where."""
    from mtcnn_lab.io.frame_export import MANIFEST_NAME, export_frames

    if args.every < 1:
        raise ParameterError(f"--every must be at least 1, not {args.every}; e.g. --every 30 for one frame in 30")
    manifest = export_frames(args.video, args.out_dir, every=args.every, decode=args.decode, force=args.force,
                             progress=not args.quiet and sys.stderr.isatty())
    record = manifest["decoding"]
    print(f"wrote {len(manifest['frames'])} frames and {MANIFEST_NAME} to {args.out_dir} "
          f"(--decode {record['profile']}; {'upright' if record['upright'] else 'NOT upright'})")
    return 0
