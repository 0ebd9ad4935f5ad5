"""Running the numbered notebooks headless (papermill), as ``./run_all.sh`` does.

Each ``notebooks/NN_name.ipynb`` (paired with ``NN_name.py`` in jupytext's percent format) is
executed with its ``parameters`` cell overridden, into ``results/notebooks/``; the notebooks
themselves write ``results/tables`` and ``results/figures``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MtcnnLabError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
RESULTS = REPO / "results"


class NotebookFailed(MtcnnLabError):
    """A notebook raised an error; the message names the notebook and the cell."""


@dataclass
class NotebookRun:
    """One executed notebook: where it was written, how long it took, which files it produced."""

    name: str
    output: Path
    seconds: float
    written: list[Path] = field(default_factory=list)


def notebook_paths(only: Sequence[str] | None = None) -> list[Path]:
    """The numbered notebooks in order; ``only`` keeps those whose name starts with one of the prefixes."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.stem.startswith(prefix) for prefix in only)]
        if not paths:
            raise NotebookFailed(f"no notebook in {NOTEBOOKS} starts with {', '.join(only)}")
    return paths


def parse_value(text: str) -> object:
    """A ``-p NAME VALUE`` value: JSON when it parses (numbers, true, null, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _files_under(folder: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def run_notebook(path: Path, parameters: dict, results: Path = RESULTS) -> NotebookRun:
    """Execute one notebook with papermill into ``results/notebooks``; raise :class:`NotebookFailed`."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output = results / "notebooks" / path.name
    output.parent.mkdir(parents=True, exist_ok=True)
    before = _files_under(results / "tables") | _files_under(results / "figures")
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(output), parameters=parameters, cwd=str(path.parent),
                                   kernel_name="python3", language="python", progress_bar=False,
                                   log_output=False)
    except PapermillExecutionError as err:
        raise NotebookFailed(f"notebook {path.name} failed in cell {err.exec_count} ({err.ename}: "
                             f"{err.evalue.splitlines()[0] if err.evalue else ''}); the executed notebook with "
                             f"the traceback is {output}") from None
    after = _files_under(results / "tables") | _files_under(results / "figures")
    written = sorted(p for p, mtime in after.items() if before.get(p) != mtime)
    return NotebookRun(path.stem, output, time.perf_counter() - start, written)


def run_notebooks(only: Sequence[str] | None = None, quick: bool = False, parameters: dict | None = None,
                  results: Path = RESULTS) -> list[NotebookRun]:
    """Execute the notebooks in order with ``quick`` and ``results_dir`` set; stop at the first failure."""
    from tqdm import tqdm

    params = {"quick": quick, "results_dir": str(results.resolve()), **(parameters or {})}
    runs = []
    for path in tqdm(notebook_paths(only), desc="notebooks", unit="nb"):
        runs.append(run_notebook(path, params, results))
    return runs
