"""``mtcnn-lab probe``: what a video declares (codec, size, colour tags, rotation) and where the decode
profiles disagree on it."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``probe`` and its options."""
    parser = sub.add_parser("probe", help="show a video's codec, colour tags and rotation, and how the decode "
                                          "profiles differ on it")
    parser.add_argument("videos", nargs="+", help="video files")
    parser.add_argument("--json", action="store_true", help="print one JSON object (path -> report) instead")
    parser.set_defaults(func=run)


def _text(info: dict, comparison: dict) -> list[str]:
    rotation = ("no display matrix" if info["display_rotation"] is None
                else f"display matrix {info['display_rotation']:g} degrees")
    fps = "unknown fps" if info["fps"] is None else f"{info['fps']:.3f} fps"
    lines = [f"{info['path']}: {info['codec']} {info['width']}x{info['height']} (as stored), {fps}, "
             f"{info['header_frames']} frames in the header, {info['pixel_format']} {info['bit_depth']}-bit",
             f"  colour tags: matrix {info['matrix']}, primaries {info['primaries']}, transfer {info['transfer']}, "
             f"range {info['range']}; {rotation}"]
    for name, row in comparison["profiles"].items():
        diff = row["levels_from_upright"]
        levels = "" if diff is None else f"; first frame up to {diff['max']} levels from upright (mean {diff['mean']})"
        lines.append(f"  {name:13s} {row['shape'][1]}x{row['shape'][0]}, turned {row['rotation_applied']} "
                     f"degrees clockwise: {row['picture']}{levels}")
    lines += [f"  note: {note}" for note in comparison["notes"]]
    return lines


def run(args: argparse.Namespace) -> int:
    """Probe every video; 1 if any could not be read (its error is printed, the others still are)."""
    from mtcnn_lab.errors import InputError
    from mtcnn_lab.io.decode.compare import compare_profiles
    from mtcnn_lab.io.decode.probe import probe_video

    reports, failed = {}, 0
    for path in args.videos:
        try:
            info = probe_video(path)
            comparison = compare_profiles(path, info)
        except InputError as err:
            failed += 1
            reports[path] = {"error": str(err)}
            print(f"error: {err}", file=sys.stderr)
            continue
        reports[path] = {"stream": info.as_dict(), **comparison}
        if not args.json:
            print("\n".join(_text(info.as_dict(), comparison)))
    if args.json:
        print(json.dumps(reports, indent=2))
    return 1 if failed else 0
