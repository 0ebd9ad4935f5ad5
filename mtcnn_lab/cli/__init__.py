"""mtcnn-lab: OpenFace's MTCNN face detector; detect faces, convert models, run the lab.

The ``mtcnn-lab`` command, one module per subcommand: ``detect`` images and videos, ``probe`` videos and
write their ``frames``, ``backends``,
``convert``, the OpenFace ``models`` cache, ``corpus``, and the lab's ``manifest``, ``workbench`` and ``bench``.

Errors the user can fix are printed as one line (``error: ...``) with exit code 2; a ``detect``
run over several paths reports a bad path in its result entry, processes the others and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from mtcnn_lab.errors import MtcnnLabError
from mtcnn_lab.version import __version__

log = logging.getLogger("mtcnn_lab")

COMMANDS = ("detect", "probe", "frames", "backends", "convert", "models", "corpus", "manifest", "workbench", "bench")
"""The subcommands, one module each (``mtcnn_lab.cli.NAME``), in the order ``--help`` lists them. They are
imported by :func:`build_parser`, inside :func:`main`'s Ctrl-C handling: the command starts light."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mtcnn-lab``."""
    parser = argparse.ArgumentParser(prog="mtcnn-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mtcnn-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is being done")
    sub = parser.add_subparsers(dest="command", required=True)

    for name in COMMANDS:
        importlib.import_module(f"mtcnn_lab.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtcnn-lab`` console script."""
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        return args.func(args)
    except MtcnnLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
