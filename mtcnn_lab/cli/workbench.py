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
    import time

    from mtcnn_lab.lab.readme_figures import FiguresUnavailable, update_readme
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
    readme = root / "README.md"
    if not args.quick and not args.only and not parameters and results == root / "results" and readme.is_file():
        try:
            changed = update_readme(readme, results / "tables")
        except FiguresUnavailable as err:  # the notebooks ran; only the README is left as it was
            print(f"{readme}: accuracy figures not rewritten: {err}")
        else:
            print(f"{readme}: accuracy figures {'rewritten' if changed else 'unchanged'} from {results / 'tables'}")
    return 0
