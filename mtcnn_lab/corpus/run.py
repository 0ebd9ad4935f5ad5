"""The corpus run on the client: plan what is left, submit one task per item to Dask, gather the summary,
and on Ctrl-C cancel, close and clean up (:mod:`mtcnn_lab.corpus`)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from mtcnn_lab.checks import positive_int
from mtcnn_lab.corpus.items import output_name
from mtcnn_lab.corpus.task import is_complete, partial_files, process_video
from mtcnn_lab.errors import ParameterError
from mtcnn_lab.files import writable_folder
from mtcnn_lab.io.paths import PathLike, show_path

log = logging.getLogger(__name__)

__all__ = ["run_corpus"]


def _cleanup(out_dir: Path, names: Sequence[str], decode: str) -> list[Path]:
    """Remove the partial files this run's items (result ``names``) leave when stopped
    (:func:`~mtcnn_lab.corpus.task.partial_files`); the files of other items, other runs and the user stay."""
    removed = []
    for path in (p for name in names for p in partial_files(out_dir, name, decode)):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def _row(item: Path, name: str, status: str, error: str = "") -> dict:
    """A summary row of an item that was not processed here (``skipped``) or whose task failed (``error``)."""
    done = status == "skipped"
    return {"item": str(item), "output": name, "status": status, "frames": None if done else 0,
            "faces": None if done else 0, "errors": None if done else 0, "resumed": 0, "seconds": 0.0, "worker": "",
            "error": error}


def _plan(items: Sequence[PathLike], out_dir: Path, every: int, decode: str, root: PathLike | None,
          backend: str, weights: str) -> tuple[list[dict], list[tuple[Path, str]]]:
    """The rows of the items already complete, and the ``(item, result name)`` of the others (items as real paths;
    a link that loops stays as it is, and its task says so in one line). Two items of one result name are a
    ParameterError naming both."""
    done, todo, seen = [], [], {}
    for given in items:
        name = output_name(given, root)
        if name in seen:
            raise ParameterError(f"corpus items {show_path(str(seen[name]))} and {show_path(str(given))} would both "
                                 f"write {name} in {out_dir}; rename one of them, or process them in separate runs "
                                 "with different --out folders")
        seen[name] = given
        item = Path(os.path.realpath(given))
        if is_complete(out_dir / name, item, every, decode, backend, weights):
            done.append(_row(item, name, "skipped"))
        else:
            todo.append((item, name))
    return done, todo


def dask_setup(worker) -> None:
    """Dask's preload hook, run in each worker process of :func:`_local_cluster` as it starts (also one that
    replaces a dead worker): the process ignores SIGINT, so that a terminal's Ctrl-C, sent to the whole process
    group, reaches only the client, which closes the cluster (no worker tracebacks); and once the worker is
    closing, its task-state log (a warning per task it cancels) is silent."""
    from distributed.core import Status

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed.worker.state_machine").addFilter(
        lambda record: worker.status in (Status.running, Status.paused))


def _local_cluster(n_workers: int | None):
    """A LocalCluster of ``n_workers`` (default: the CPU count) single-threaded worker processes that ignore
    Ctrl-C (:func:`dask_setup`), its dashboard on a free port of 127.0.0.1 (not open to the network)."""
    from distributed import LocalCluster

    quiet = logging.getLogger("distributed").getEffectiveLevel() > logging.DEBUG
    cluster = LocalCluster(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address="127.0.0.1:0", preload=[__name__],
                           silence_logs=logging.WARNING if quiet else False)
    log.info("Dask dashboard of the corpus run: %s", cluster.dashboard_link)
    return cluster


def _gather(client, futures: list, todo: list[tuple[Path, str]], progress: bool) -> list[dict]:
    """The summary rows of ``futures`` as they finish (a task that kept failing gives an ``error`` row)."""
    from distributed import as_completed
    from tqdm import tqdm

    by_key = {f.key: (item, name) for f, (item, name) in zip(futures, todo, strict=True)}
    rows: list[dict] = []
    with tqdm(total=len(futures), desc="corpus", unit="video", disable=not progress) as bar:
        for future in as_completed(futures):
            item, name = by_key[future.key]
            try:
                row = future.result()
            except Exception as err:  # a task that kept failing, or a worker that kept dying: its row says why
                log.warning("corpus item %s failed: %s: %s", item, type(err).__name__, err)
                row = _row(item, name, "error", " ".join(f"{type(err).__name__}: {err}".split()))
            rows.append(row)
            bar.set_postfix_str(f"errors={sum(r['status'] == 'error' for r in rows)}")
            bar.update(1)
    client.cancel(futures)  # release the results: a worker lost now must not rerun finished tasks
    return rows


def _cancel(client, futures: list) -> None:
    """Cancel the tasks after Ctrl-C; a client that cannot is logged, the interrupt goes on."""
    try:
        client.cancel(futures, force=True)
    except Exception as err:  # the scheduler may already be gone
        log.warning("could not cancel the corpus tasks (%s: %s)", type(err).__name__, err)


SCHEDULER_TIMEOUT_S = 10
"""How long to wait for a scheduler given by address before saying it cannot be reached."""


def _client(client_class, scheduler: str | None, cluster):
    """A Dask client of ``scheduler`` (an address) or of ``cluster``; an address that is malformed or does not
    answer within :data:`SCHEDULER_TIMEOUT_S` is a one-line ParameterError."""
    if scheduler is None:
        return client_class(cluster)
    try:
        return client_class(scheduler, timeout=SCHEDULER_TIMEOUT_S)
    except Exception as err:  # a bad or silent address, or another service's answer (e.g. MemoryError on its bytes)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ParameterError(f"cannot connect to the Dask scheduler {scheduler!r} ({reason}); give its address "
                             "as tcp://host:8786, or leave --scheduler out for a local cluster") from None


def run_corpus(items: Sequence[PathLike], out_dir: PathLike, scheduler: str | None = None,
               n_workers: int | None = None, every: int = 1, backend: str = "auto", weights: str = "auto",
               retries: int = 2, threads: int = 1, root: PathLike | None = None, progress: bool = True,
               client=None, crash_after_frames: dict[str, int] | None = None, decode: str | None = None) -> list[dict]:
    """Process every item on Dask; write result files, ``summary.json`` and ``summary.csv``.

    ``scheduler``: address of an existing Dask scheduler (``tcp://host:8786``); default a
    ``LocalCluster`` with ``n_workers`` (default: the CPU count) single-threaded worker processes.
    ``client``: an existing ``distributed.Client`` to use instead (not closed here). ``root``: the
    corpus folder, for the result file names (:func:`output_name`). Items whose result file is
    complete are skipped (``status`` ``skipped``). Returns the summary rows sorted by item.
    ``crash_after_frames``: fault injection, ``{item path: N}`` (see :func:`process_video`). ``decode``:
    the videos' decode profile (None: the default); a result file made with another one is redone.
    """
    from distributed import Client

    from mtcnn_lab.io.decode.profiles import get_profile
    from mtcnn_lab.io.tables import save_table

    # 1. check the arguments and find what is left to do
    if isinstance(items, str | os.PathLike):
        raise ParameterError(f"run_corpus takes a list of items, not the path {items}; pass find_corpus({items!r})")
    positive_int(every, "every")
    positive_int(n_workers, "n_workers", optional=True)
    out_dir = writable_folder(out_dir, "choose another output folder (--out)")
    decode = get_profile(decode).name
    rows, todo = _plan(items, out_dir, every, decode, root, backend, weights)
    crash = {os.path.realpath(k): v for k, v in (crash_after_frames or {}).items()}
    start = time.perf_counter()
    given_client = client is not None
    own_cluster = own_client = None
    futures = []
    try:
        if todo:
            # 2. connect: the caller's client, a scheduler's, or a local cluster of our own
            if client is None:
                own_cluster = None if scheduler is not None else _local_cluster(n_workers)
                own_client = client = _client(Client, scheduler, own_cluster)
            # 3. one task per item, each writing its result file; gather the summary rows
            futures = [client.submit(process_video, str(item), str(out_dir), backend, weights, every, threads,
                                     name, crash.get(str(item)), decode, retries=retries, pure=False,
                                     key=f"mtcnn-corpus-{_utf8(name)}-{time.time_ns()}")
                       for item, name in todo]
            rows += _gather(client, futures, todo, progress)
    except KeyboardInterrupt:
        # Ctrl-C: cancel the tasks on a cluster not ours, close what we started (quietly: a worker still busy is
        # killed, as asked; its tasks stop between frames), leave no partial file of ours
        if futures and client is not None and own_cluster is None:
            _cancel(client, futures)
        dask_log = logging.getLogger("distributed")
        level = dask_log.level
        dask_log.setLevel(logging.ERROR)
        try:
            _close(own_client, own_cluster)
        finally:
            dask_log.setLevel(level)
        own_client = own_cluster = None
        _cleanup(out_dir, [name for _, name in todo], decode)
        raise
    finally:
        if own_cluster is not None:
            _close(own_client, own_cluster)
            _cleanup(out_dir, [name for _, name in todo], decode)  # every worker has stopped: nothing is written
        else:
            _close(own_client, None)
    # 4. the summary
    rows.sort(key=lambda r: r["item"])
    meta = {"items": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
            "skipped": sum(r["status"] == "skipped" for r in rows),
            "error": sum(r["status"] == "error" for r in rows), "every": every, "decode": decode, "backend": backend,
            "weights": weights, "scheduler": scheduler or ("client" if given_client else "LocalCluster"),
            "seconds": round(time.perf_counter() - start, 3)}
    save_table(rows, "summary", out_dir, meta=meta)
    return rows


def _utf8(name: str) -> str:
    """A task key's form of result ``name``: what is not valid UTF-8 (a file name's undecodable bytes) escaped, since
    Dask sends keys as UTF-8 and one it cannot encode cuts the client off the scheduler."""
    return name.encode("utf-8", "backslashreplace").decode()


def _close(client, cluster) -> None:
    """Close the client and the cluster this run started; one that fails to close is logged."""
    for thing in (client, cluster):
        if thing is not None:
            try:
                thing.close()
            except Exception as err:  # a cluster half torn down by Ctrl-C: the run's result stands
                log.warning("could not close the Dask %s (%s: %s)", type(thing).__name__, type(err).__name__, err)
