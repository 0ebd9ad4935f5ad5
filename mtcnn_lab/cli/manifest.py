"""``mtcnn-lab manifest``: write a workbench manifest for a folder of videos, or show one (the lab)."""

from __future__ import annotations

import argparse
import sys

from mtcnn_lab.cli.options import parse_positions
from mtcnn_lab.errors import ParameterError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``manifest write`` and ``manifest show`` and their options."""
    from mtcnn_lab.io.videos import DEFAULT_POSITIONS

    parser = sub.add_parser("manifest", help="write or show a workbench manifest (data/README.md)")
    actions = parser.add_subparsers(dest="action", required=True)
    write = actions.add_parser("write", help="write a manifest for a folder of videos")
    write.add_argument("folder", help="the videos (searched recursively)")
    write.add_argument("out", help="the manifest JSON to write")
    write.add_argument("--positions", type=parse_positions, default=DEFAULT_POSITIONS,
                       help="fractions of each video's length (default 0.2,0.5,0.8)")
    write.add_argument("--reference", help="JSON of C++ results, image paths relative to FOLDER")
    write.add_argument("--name", help="the data set's name (default: the folder's)")
    write.add_argument("--overwrite", action="store_true", help="replace an existing manifest")
    show = actions.add_parser("show", help="list the groups and items of a manifest")
    show.add_argument("manifest", nargs="?", help="default: $MTCNN_LAB_MANIFEST or data/manifest.json")
    show.add_argument("--quick", type=int, help="only this many items, spread over the groups")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the manifest and say what it holds, or list a manifest's groups; input errors exit 2."""
    from mtcnn_lab.lab.dataset import load_manifest, write_manifest_for_folder

    if args.action == "write":
        out = write_manifest_for_folder(args.folder, args.out, list(args.positions), args.reference,
                                        name=args.name, overwrite=args.overwrite)
        dataset = load_manifest(out)
        print(f"wrote {out}: {len(dataset)} items in {len(dataset.groups)} groups")
        return 0
    if args.quick is not None and args.quick < 1:
        raise ParameterError(f"--quick must be at least 1 (the number of items to keep), not {args.quick}")
    dataset = load_manifest(args.manifest, quick=args.quick)
    print(f"{dataset.name}: {len(dataset)} items, manifest {dataset.manifest}, root {dataset.root}, "
          f"reference {dataset.reference or 'none'}")
    for group, members in dataset.by_group().items():
        with_ref = sum(item.has_reference for item in members)
        print(f"  {group}: {len(members)} items ({with_ref} with C++ faces): "
              f"{', '.join(item.id for item in members[:4])}{', ...' if len(members) > 4 else ''}", file=sys.stdout)
    for note in dataset.notes:
        print(f"  note: {note}")
    return 0
