"""Running the numbered notebooks headless (papermill), as ``./run_all.sh`` does.

The caller names the project folder (``root``: the repository, where ``./run_all.sh`` runs). Each
``root/notebooks/NN_name.ipynb`` (paired with ``NN_name.py`` in jupytext's percent format) is executed
with its ``parameters`` cell overridden, into ``results/notebooks/``; the notebooks themselves write
``results/tables`` and ``results/figures``. The default results folder is ``root/results`` and the
default manifest ``root/data/manifest.json``. What the kernel process prints on its own stderr (ipykernel's
start-up warnings, library chatter) goes to ``results/notebooks/NN_name.kernel.log``, which a failure names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mtcnn_lab.errors import MtcnnLabError
from mtcnn_lab.files import writable_folder


class NotebookFailed(MtcnnLabError):
    """A notebook raised an error; the message names the notebook and the cell."""


@dataclass
class NotebookRun:
    """One executed notebook: where it was written, how long it took, which files it produced."""

    name: str
    output: Path
    seconds: float
    written: list[Path] = field(default_factory=list)


def notebook_paths(root: Path, only: Sequence[str] | None = None) -> list[Path]:
    """The numbered notebooks of ``root/notebooks`` in order; ``only`` keeps those whose name starts with
    one of the prefixes. NotebookFailed when there are none."""
    folder = Path(root) / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.stem.startswith(prefix) for prefix in only)]
    if not paths:
        raise NotebookFailed(f"no notebook in {folder}{' starts with ' + ', '.join(only) if only else ''}; "
                             "run from the repository root or pass its folder (mtcnn-lab workbench --root DIR)")
    return paths


def parse_value(text: str) -> object:
    """A ``-p NAME VALUE`` value: JSON when it parses (numbers, true, null, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _files_under(folder: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def _kernel_manager(log_path: Path):
    """A jupyter kernel manager class that starts the kernel with its stderr in ``log_path``."""
    from jupyter_client.manager import AsyncKernelManager

    class KernelWithLog(AsyncKernelManager):
        async def start_kernel(self, **kw):
            with log_path.open("ab") as log:  # the kernel process keeps its own copy of the descriptor
                kw.setdefault("stderr", log)
                return await super().start_kernel(**kw)

    return KernelWithLog


def declared_parameters(path: Path) -> set[str]:
    """The names in the ``parameters`` cell of notebook ``path``."""
    import papermill

    return set(papermill.inspect_notebook(str(path)))


def run_notebook(path: Path, parameters: dict, results: Path) -> NotebookRun:
    """Execute one notebook with papermill into ``results/notebooks``, with those of ``parameters`` that its
    ``parameters`` cell declares; raise :class:`NotebookFailed`."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    declared = declared_parameters(path)
    parameters = {name: value for name, value in parameters.items() if name in declared}

    output = results / "notebooks" / path.name
    writable_folder(output.parent, "choose another results folder (--results)")
    kernel_log = output.resolve().with_suffix(".kernel.log")  # papermill runs the kernel in the notebook folder
    kernel_log.unlink(missing_ok=True)
    before = _files_under(results / "tables") | _files_under(results / "figures")
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(output), parameters=parameters, cwd=str(path.parent),
                                   kernel_name="python3", language="python", progress_bar=False,
                                   log_output=False, kernel_manager_class=_kernel_manager(kernel_log))
    except PapermillExecutionError as err:
        raise NotebookFailed(f"notebook {path.name} failed in cell {err.exec_count} ({err.ename}: "
                             f"{err.evalue.splitlines()[0] if err.evalue else ''}); the executed notebook with "
                             f"the traceback is {output}, the kernel's own messages are in {kernel_log}") from None
    after = _files_under(results / "tables") | _files_under(results / "figures")
    written = sorted(p for p, mtime in after.items() if before.get(p) != mtime)
    return NotebookRun(path.stem, output, time.perf_counter() - start, written)


def run_notebooks(root: Path, only: Sequence[str] | None = None, quick: bool = False, parameters: dict | None = None,
                  results: Path | None = None) -> Iterator[tuple[int, int, NotebookRun]]:
    """Execute the notebooks of ``root`` in order with ``quick``, ``results_dir`` (default ``root/results``)
    and ``manifest`` (default ``root/data/manifest.json``) set, yielding ``(number, count, run)`` as each
    finishes; stop at the first failure (:class:`NotebookFailed`)."""
    root = Path(root).resolve()
    results = Path(results) if results is not None else root / "results"
    params = {"quick": quick, "results_dir": str(results.resolve()),
              "manifest": str(root / "data" / "manifest.json"), **(parameters or {})}
    paths = notebook_paths(root, only)
    declared = set().union(*(declared_parameters(path) for path in paths))
    unknown = sorted(set(parameters or {}) - declared)
    if unknown:
        which = "these notebooks" if only else "any notebook"
        raise NotebookFailed(f"{', '.join(unknown)}: not a parameter of {which} "
                             f"(they take {', '.join(sorted(declared))})")
    for number, path in enumerate(paths, start=1):
        yield number, len(paths), run_notebook(path, params, results)
