"""What the machine and process are doing while a benchmark runs: CPU and library versions, thread pools,
memory high-water marks, load average."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np
from threadpoolctl import threadpool_info

from mtcnn_lab.lab.bench.timing import pinned_threads


def machine_info() -> dict:
    """What the numbers were measured on: CPU, cores, Python, numpy's BLAS, OpenCV."""
    blas = [{"api": i.get("internal_api"), "version": i.get("version"), "arch": i.get("architecture")}
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
            "blas": blas, "cpu_count": __import__("os").cpu_count()}


def proc_status(key: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB, or None off Linux."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def reset_rss_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux ``clear_refs`` 5); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def ru_maxrss_mb() -> float | None:
    """This process's peak resident memory in MiB, or None where ``resource`` is missing (Windows)."""
    try:
        import resource
        import sys
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _os_thread_count() -> int | None:
    """Threads of this process as the OS counts them (runtime pools included), or None off Linux."""
    import os

    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def thread_settings() -> dict:
    """The thread counts in force: OpenCV, each BLAS/OpenMP pool (threadpoolctl), torch if loaded, OS threads."""
    import sys

    pools = [{"api": i.get("internal_api"), "user_api": i.get("user_api"), "num_threads": i.get("num_threads")}
             for i in threadpool_info()]
    out = {"opencv": cv2.getNumThreads(), "pools": pools, "os_threads": _os_thread_count()}
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].get_num_threads()
    return out


@contextmanager
def pinned_all_threads(threads: int | None) -> Iterator[None]:
    """:func:`pinned_threads` plus torch's intra-op pool when torch is loaded; nothing when ``threads`` is None."""
    import sys

    if threads is None:
        yield
        return
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        with pinned_threads(threads):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(previous)


def versions() -> dict:
    """Versions of the runtimes that matter for the numbers (absent ones omitted)."""
    from importlib import metadata

    out = {}
    for dist in ("mtcnn-lab", "onnxruntime", "torch", "pymtcnn", "opencv-python-headless", "opencv-python", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, or None where the OS has none."""
    import os

    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None
