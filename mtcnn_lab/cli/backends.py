"""``mtcnn-lab backends``: list the runtimes usable here, why the others are not, what auto picks."""

from __future__ import annotations

import argparse

from mtcnn_lab.cli.options import WEIGHT_SETS


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``backends`` and its options."""
    parser = sub.add_parser("backends", help="list the runtimes usable here and why the others are not")
    parser.add_argument("--weights", default="auto", choices=WEIGHT_SETS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
