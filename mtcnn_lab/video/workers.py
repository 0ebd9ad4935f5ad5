"""Detection of decoded video frames on worker processes (``detect_video(..., workers=N)``, N > 1).

The caller's process decodes and copies each frame into a shared-memory slot of the least busy
worker (eight slots per worker, reused; a slot grows if a larger frame comes), then sends the frame's
index, slot and shape to that worker over its pipe. Each worker builds its own detector with one
runtime thread and one BLAS and OpenCV thread, bound to one CPU on Linux, detects on the slot in
place and sends back the frame's result entry, which frees the slot; up to four frames waiting together
go through the nets in one pass (``MTCNN.detect_batch``, the same results), while the next four wait
in the other slots. Entries are yielded in frame order; at most eight frames per worker are in flight,
so memory stays constant (about 50 MB per worker for 1080x1920 frames). A slot is made only while
``/dev/shm`` has room for it (Docker gives 64 MB; writing into a segment the tmpfs cannot back kills the
caller with a bus error): the other frames go to the workers through their pipes, with one warning. The
segments are named ``mtcnn-lab-<pid>-...`` after the caller, and each run first removes those of callers no
longer alive (killed with SIGKILL, which leaves no one to unlink them).

Workers are never forked from the caller (its runtime thread pools do not survive ``fork``). On
Linux they are forked from multiprocessing's fork server, which loads the modules and compiled
kernels once (:mod:`mtcnn_lab.video.preload`), so a worker does not load them again, and the server
is reused by later runs in the same process. Elsewhere they are spawned. The server is started with SIGINT
ignored, and the workers inherit that: Ctrl-C reaches the whole process group, and only the caller handles it.
Workers are started from a thread, and until the first one is ready the caller's own detector
takes the frames.

A frame's exception in a worker is raised in the caller in that frame's turn (a
:class:`MtcnnLabError` as itself, anything else as a ``RuntimeError`` with the worker's traceback),
and so are a worker failing to start and a worker dying. However the generator ends (exhausted,
closed early, an error, Ctrl-C), the workers are terminated and joined and the shared memory is
unlinked. As with any ``spawn`` or fork-server start, the caller's main module is imported again
(by the server or the workers): a script needs an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import secrets
import signal
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from multiprocessing.connection import Connection, wait
from multiprocessing.shared_memory import SharedMemory

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from mtcnn_lab.errors import MtcnnLabError, WorkerLost

FRAMES_PER_PASS = 4
"""A worker detects up to this many of its waiting frames in one pass (``MTCNN.detect_batch``)."""
SLOTS_PER_WORKER = 2 * FRAMES_PER_PASS
"""Frames a worker may hold: one pass being detected, the next one waiting."""
JOIN_S = 5.0
"""Seconds a stopping worker is given to exit before it is killed."""
SHM_DIR = "/dev/shm"
"""Where Linux keeps shared-memory segments (a tmpfs)."""
SHM_PREFIX = "mtcnn-lab-"
"""The segments' names: this prefix, the caller's pid, a random part."""
SHM_RESERVE = 16 << 20
"""Bytes of ``/dev/shm`` left free for other programs: a slot is made only when it fits beside them."""

log = logging.getLogger(__name__)


def shm_free_bytes() -> int | None:
    """Free bytes in ``/dev/shm``; None where there is no such folder (macOS, Windows: the system backs
    shared memory with swap)."""
    try:
        info = os.statvfs(SHM_DIR)
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def remove_dead_segments() -> list[str]:
    """Unlink the frame segments in ``/dev/shm`` whose caller (the pid in the name) is no longer alive, and
    return their names. Another user's are left alone (the folder is sticky)."""
    removed = []
    with contextlib.suppress(OSError):  # no /dev/shm
        for name in os.listdir(SHM_DIR):
            pid = name[len(SHM_PREFIX):].split("-")[0]
            if name.startswith(SHM_PREFIX) and pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(SHM_DIR, name))
                    removed.append(name)
    if removed:
        log.info("removed %d shared-memory segment(s) of killed runs", len(removed))
    return removed


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while this lasts, so that a process started meanwhile ignores it too (an ignored signal
    stays ignored across ``exec``, and Python leaves it so); a Ctrl-C within it is lost. Does nothing outside
    the main thread, where handlers cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _portable(err: Exception, where: str) -> Exception:
    """``err`` as sent to the caller: an :class:`MtcnnLabError` copied without its traceback (which
    holds views of the slots), anything else as a RuntimeError carrying the worker's traceback."""
    if isinstance(err, MtcnnLabError):
        return type(err)(str(err))
    return RuntimeError(f"a detection worker failed {where}:\n{''.join(traceback.format_exception(err))}")


def _work(image: str, cpu: int | None, conn: Connection) -> None:
    """A worker process: receive a recipe on ``conn`` and build a detector from it, then detect each
    frame named on ``conn`` until the caller terminates the process. Sends ``(None, None, None)`` when
    ready, then ``(index, slot, entry)`` per frame, the entry replaced by the exception when the frame
    fails, or ``(None, None, exception)`` when the detector cannot be built. ``cpu``: the CPU to run on."""
    from mtcnn_lab.detector import MTCNN

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the caller, which stops the workers
    if cpu is not None:  # OpenVINO pins a one-thread detector to the first CPU it may use: give each its own
        os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    threadpool_limits(1)
    try:
        detector = MTCNN(**conn.recv())
    except Exception as err:
        conn.send((None, None, _portable(err, "while starting")))
        return
    conn.send((None, None, None))  # ready
    attached: dict[int, SharedMemory] = {}
    while True:
        try:
            messages = [conn.recv()]
            while len(messages) < FRAMES_PER_PASS and conn.poll():  # frames already waiting: one pass for them
                messages.append(conn.recv())
        except (EOFError, OSError):  # the caller is gone
            return
        frames = []
        for _, slot, where in messages:
            if isinstance(where, np.ndarray):  # sent through the pipe: no room in /dev/shm
                frames.append(where)
                continue
            name, shape, dtype = where
            if slot in attached and attached[slot].name != name:  # the caller grew this slot
                attached.pop(slot).close()
            if slot not in attached:
                attached[slot] = SharedMemory(name)
            frames.append(np.ndarray(shape, dtype, attached[slot].buf))
        entries = _entries(detector, image, [message[0] for message in messages], frames)
        for (index, slot, *_), entry in zip(messages, entries, strict=True):
            conn.send((index, slot, entry))


def _entries(detector, image: str, indices: list[int], frames: list[np.ndarray]) -> list[dict | Exception]:
    """The result entries of frames detected in one pass (``MTCNN.detect_batch``); when that fails, frame
    by frame, each failing frame's entry replaced by its exception."""
    from mtcnn_lab.io.entries import frame_entry, log_batch_failure

    try:
        found = detector.detect_batch(frames, batch=len(frames))
        return [frame_entry(detector, image, index, frame, detections)
                for index, frame, detections in zip(indices, frames, found, strict=True)]
    except Exception as err:  # frame by frame below: the failing frame's error goes back to the caller
        log_batch_failure(image, indices, err)
        entries: list[dict | Exception] = []
        for index, frame in zip(indices, frames, strict=True):
            try:
                entries.append(frame_entry(detector, image, index, frame))
            except Exception as err:
                entries.append(_portable(err, f"on frame {index}"))
        return entries


def _send_quietly(conn: Connection, message: object) -> None:
    with contextlib.suppress(OSError):  # the worker was stopped before it read the message
        conn.send(message)


def _context():
    """Linux: the fork server, loading :mod:`mtcnn_lab.video.preload` (started once per process, on
    first use; ``__main__`` stays in its list, as multiprocessing has it by default). Elsewhere: ``spawn``."""
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", "mtcnn_lab.video.preload"])
    return context


def start_fork_server() -> None:
    """Start the workers' fork server now, in the background (Linux; elsewhere this does nothing): it
    loads its modules while the caller gets ready, e.g. builds its detector."""
    if sys.platform.startswith("linux"):
        _context()  # its preload list
        with _sigint_ignored():  # a few milliseconds: its process is started, its imports are not awaited
            multiprocessing.forkserver.ensure_running()


class _Worker:
    """One worker process, the caller's end of its pipe and its shared-memory slots; :meth:`close` (or a
    ``with`` block) terminates it and releases them."""

    def __init__(self, context, recipe: dict, image: str, cpu: int | None, name: str):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_work, args=(image, cpu, child), name=name, daemon=True)
        self.launched = threading.Event()  # process.start() has returned (or failed: launch_error)
        self.launch_error: BaseException | None = None
        # Started from a thread: Process.start waits for the fork server to load its modules, and sending
        # the recipe (weights included, ~2 MB) waits for the worker to read it; the caller detects meanwhile.
        # Nothing else is sent to the worker before it reports ready, so the pipe is never written twice.
        self.launcher = threading.Thread(target=self._launch, args=(child, recipe), daemon=True)
        self.launcher.start()
        self.memory: list[SharedMemory | None] = [None] * SLOTS_PER_WORKER
        self.free = list(range(SLOTS_PER_WORKER))  # the slots the worker is not reading
        self.started = False  # the worker has built its detector

    def _launch(self, child: Connection, recipe: dict) -> None:
        try:
            self.process.start()
        except BaseException as err:  # reported by _Pool.collect, woken by the end of file on the pipe
            self.launch_error = err
            return
        finally:
            child.close()
            self.launched.set()
        _send_quietly(self.conn, recipe)

    @property
    def sentinel(self) -> int | None:
        """The process's sentinel (ready when it exits); None until it has been started."""
        return self.process.sentinel if self.launched.is_set() and self.launch_error is None else None

    def submit(self, index: int, frame: np.ndarray) -> bool:
        """Copy frame ``index`` into a free slot and send it to the worker; a slot too small or not made yet
        is made when ``/dev/shm`` has room for it, else the frame itself is sent. True when it was."""
        slot = self.free.pop()
        memory = self.memory[slot]
        if memory is None or memory.size < frame.nbytes:
            free = shm_free_bytes()
            if free is not None and free < frame.nbytes + SHM_RESERVE:
                with contextlib.suppress(BrokenPipeError):  # the worker has exited: _Pool.collect says why
                    self.conn.send((index, slot, frame))
                return True
            if memory is not None:
                memory.close()
                memory.unlink()
            name = f"{SHM_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
            memory = self.memory[slot] = SharedMemory(name, create=True, size=frame.nbytes)
        np.copyto(np.ndarray(frame.shape, frame.dtype, memory.buf), frame)
        with contextlib.suppress(BrokenPipeError):  # the worker has exited: _Pool.collect says why
            self.conn.send((index, slot, (memory.name, frame.shape, frame.dtype.str)))
        return False

    def __enter__(self) -> _Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Terminate the worker (it holds nothing to save), join it, release the pipe and the shared memory."""
        self.launched.wait()
        if self.launch_error is None:
            self.process.terminate()
            self.process.join(JOIN_S)
            if self.process.exitcode is None:
                self.process.kill()
                self.process.join()
        self.launcher.join()  # its send fails fast once the worker is gone
        self.conn.close()
        for memory in self.memory:
            if memory is not None:
                memory.close()
                memory.unlink()


class _Pool:
    """The workers and the entries they have sent (``ready``, by frame index); :meth:`close` (or a ``with``
    block) stops every worker."""

    def __init__(self, recipe: dict, image: str, workers: int):
        context = _context()
        cpus = sorted(os.sched_getaffinity(0)) if sys.platform.startswith("linux") else None
        start_fork_server()  # from the caller's thread: see there
        remove_dead_segments()
        self.piped = False  # a frame went through a pipe (warned once)
        self.workers: list[_Worker] = []
        self.ready: dict[int, dict | Exception] = {}
        try:
            for k in range(workers):
                cpu = cpus[k % len(cpus)] if cpus else None
                self.workers.append(_Worker(context, recipe, image, cpu, f"mtcnn-worker-{k}"))
        except BaseException:
            self.close()
            raise

    def submit(self, index: int, frame: np.ndarray) -> None:
        """Send frame ``index`` to the least busy started worker (waiting until one has a free slot)."""
        while not any(worker.free and worker.started for worker in self.workers):
            self.collect(block=True)
        ready = [worker for worker in self.workers if worker.started]
        if max(ready, key=lambda worker: len(worker.free)).submit(index, frame) and not self.piped:
            self.piped = True
            log.warning("%s has %.0f MB free, too little for more frames of %.1f MB in shared memory: they go to the "
                        "workers through pipes (slower); give it more room, e.g. docker run --shm-size=1g", SHM_DIR,
                        (shm_free_bytes() or 0) / 1e6, frame.nbytes / 1e6)

    def collect(self, block: bool) -> None:
        """Move the entries the workers have sent into ``ready`` and free their slots; with ``block``,
        wait for at least one. Raise the exception of a worker that could not start, or
        :class:`~mtcnn_lab.errors.WorkerLost` when a worker died."""
        sentinels = {worker.sentinel: worker for worker in self.workers if worker.sentinel is not None}
        ready = wait([worker.conn for worker in self.workers] + list(sentinels), timeout=None if block else 0)
        for worker in self.workers:
            while worker.conn in ready and worker.conn.poll():
                try:
                    index, slot, entry = worker.conn.recv()
                except (EOFError, OSError):  # the worker died: its sentinel is ready too
                    break
                if index is None:
                    if entry is not None:
                        raise entry
                    worker.started = True
                    continue
                self.ready[index] = entry
                worker.free.append(slot)
        for worker in self.workers:
            if worker.launch_error is not None:
                raise RuntimeError(f"detection worker {worker.process.name} could not be started: "
                                   f"{worker.launch_error!r}") from worker.launch_error
        for sentinel, worker in sentinels.items():
            if sentinel in ready:
                raise WorkerLost(f"detection worker {worker.process.name} exited unexpectedly "
                                 f"(exit code {worker.process.exitcode})")

    def pop(self, index: int) -> dict:
        """The entry of frame ``index`` from ``ready``; raise the exception a worker sent in its place."""
        entry = self.ready.pop(index)
        if isinstance(entry, Exception):
            raise entry
        return entry

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker."""
        for worker in self.workers:
            worker.close()


def detect_in_workers(recipe: dict, image: str, frames: Iterable[tuple[int, np.ndarray]], done: Mapping[int, dict],
                      workers: int, local: Callable[[int, np.ndarray], dict] | None = None) -> Iterator[dict]:
    """Yield the result entry of each ``(frame index, frame)`` of ``frames``, in order, detected on
    ``workers`` processes by detectors built with ``MTCNN(**recipe)``; frames whose index is in
    ``done`` are not detected, their entry there is yielded in its place. ``local(index, frame)``,
    when given, detects frames in this process until the first worker has started,
    with one BLAS thread like the workers (numpy's sums depend on the BLAS thread count)."""
    with _Pool(recipe, image, workers) as pool:
        waiting: deque[int] = deque()  # frame indices not yet yielded, in frame order
        one_blas_thread = threadpool_limits(1) if local is not None else None
        try:
            for index, frame in frames:
                if one_blas_thread is not None and any(worker.started for worker in pool.workers):
                    one_blas_thread.restore_original_limits()
                    one_blas_thread = None
                if index in done:
                    pool.ready[index] = done[index]
                elif one_blas_thread is not None:
                    try:
                        pool.ready[index] = local(index, frame)
                    except Exception as err:  # raised in its turn, like a worker's
                        pool.ready[index] = err
                else:
                    pool.submit(index, frame)
                waiting.append(index)
                pool.collect(block=False)
                while waiting and waiting[0] in pool.ready:
                    yield pool.pop(waiting.popleft())
            while waiting:
                if waiting[0] not in pool.ready:
                    pool.collect(block=True)
                else:
                    yield pool.pop(waiting.popleft())
        finally:
            if one_blas_thread is not None:
                one_blas_thread.restore_original_limits()
