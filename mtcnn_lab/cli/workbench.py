"""``mtcnn-lab workbench``: run the numbered notebooks headless into results/ (the lab)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``workbench`` and its options."""
    parser = sub.add_parser("workbench", help="run the numbered notebooks headless into results/")
    parser.add_argument("--quick", action="store_true", help="small smoke run (a few frames, few repeats)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help="notebook parameter (repeatable), e.g. -p manifest /data/study/manifest.json")
    parser.add_argument("--only", nargs="+", metavar="NN", help="run only notebooks whose names start so, e.g. 01 05")
    parser.add_argument("--root", default=".", help="the repository (notebooks/, data/; default: this folder)")
    parser.add_argument("--results", help="results folder (default: ROOT/results)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the numbered notebooks headless into results/ and print what each wrote."""
    import os
    import time

    from mtcnn_lab.lab.dataset import MANIFEST_ENV
    from mtcnn_lab.lab.workbench import parse_value, run_notebooks

    root = Path(args.root)
    results = Path(args.results) if args.results else root / "results"
    parameters = {name: parse_value(value) for name, value in args.parameter or []}
    start = time.perf_counter()
    runs = []
    for number, count, run in run_notebooks(root, only=args.only, quick=args.quick, parameters=parameters,
                                            results=results):
        runs.append(run)
        print(f"[{number}/{count}] {run.name}: {run.seconds:.0f} s, {len(run.written)} table/figure files", flush=True)
    written = sum(len(run.written) for run in runs)
    print(f"{len(runs)} notebooks in {time.perf_counter() - start:.0f} s; {written} table/figure files in "
          f"{results / 'tables'} and {results / 'figures'}; executed notebooks in {results / 'notebooks'}")
    default_data = not parameters and not os.environ.get(MANIFEST_ENV, "").strip() and not args.results
    if not args.quick and not args.only and default_data:  # the figures of a full run on the reference inputs
        record_figures(results)
    return 0


def record_figures(results: Path) -> None:
    """Record this CPU's accuracy figures from ``results/tables`` beside the other machines' and warn, naming the
    machine and the bound, for each README bound they break (the README itself is never written)."""
    from mtcnn_lab.lab.accuracy_records import RECORDS, FiguresUnavailable, broken_bounds, record_accuracy

    try:
        entry = record_accuracy(results)
    except FiguresUnavailable as err:  # the notebooks ran; only the records are left as they were
        print(f"accuracy figures not recorded: {err}")
        return
    print(f"{results / RECORDS}: accuracy figures of {entry['cpu']} recorded ({entry['date']})")
    for bound in broken_bounds(entry["figures"]):
        print(f"WARNING: the README's bound '{bound}' does not hold on {entry['cpu']}")
