"""Instruction-set caps: run the runtimes as on a CPU with less than this one has (x86-64).

Each runtime picks its float kernels by the CPU it finds, so results can differ in the last bits
between an AVX-512 and an AVX2 machine. Most can be told to use no more than a given level through an
environment variable read when the library loads, so one machine can check what a smaller one computes:

* oneDNN, in OpenVINO's CPU plugin and in torch: ``ONEDNN_MAX_CPU_ISA``;
* torch's own vectorised kernels: ``ATEN_CPU_CAPABILITY``;
* numba, which compiles this package's resize, crop, proposal and NMS kernels: ``NUMBA_CPU_NAME``;
* OpenBLAS (numpy's BLAS): ``OPENBLAS_CORETYPE``. Some machines set it already, because older
  OpenBLAS builds misbehave on their CPU; a value set by the machine is kept, never overridden;
* ONNX Runtime (MLAS) has no such switch: it dispatches on the CPU's own flags.

:func:`kernels_in_use` reports what each runtime actually picked, so a cap that is ignored is seen.
Caps only take effect in a new process: :func:`capped_environment` builds its environment, and
:func:`run_under_levels` runs a command under each level.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LEVELS: dict[str, dict[str, str]] = {
    "sse4.2": {"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default", "NUMBA_CPU_NAME": "nehalem",
               "OPENBLAS_CORETYPE": "Nehalem"},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "NUMBA_CPU_NAME": "haswell",
             "OPENBLAS_CORETYPE": "Haswell"},
    "avx512": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "ATEN_CPU_CAPABILITY": "avx512",
               "NUMBA_CPU_NAME": "skylake-avx512", "OPENBLAS_CORETYPE": "SkylakeX"},
}
"""The levels, lowest first, and the environment that caps each runtime at that level."""

REQUIRED_FLAGS = {"sse4.2": {"sse4_2"}, "avx2": {"avx2", "fma"}, "avx512": {"avx512f", "avx512bw", "avx512vl"}}
"""The ``/proc/cpuinfo`` flags a CPU needs for a level to run on it."""

MACHINE_SET = ("OPENBLAS_CORETYPE",)
"""Variables kept as the machine set them, when it did (see the module docstring)."""


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux); empty where ``cpuinfo`` cannot be read."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def runnable_levels(flags: set[str] | None = None) -> list[str]:
    """The levels of :data:`LEVELS` this CPU can run (all of them up to its own), lowest first."""
    flags = cpu_flags() if flags is None else flags
    return [level for level in LEVELS if REQUIRED_FLAGS[level] <= flags]


def capped_environment(level: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the caps of ``level``; a variable of
    :data:`MACHINE_SET` already in ``base`` keeps its value. ``ValueError`` for an unknown level."""
    if level not in LEVELS:
        raise ValueError(f"unknown ISA level {level!r}; choose one of {', '.join(LEVELS)}")
    env = dict(os.environ if base is None else base)
    for name, value in LEVELS[level].items():
        if name in MACHINE_SET and name in env:
            continue
        env[name] = value
    return env


def openblas_within(level: str, openblas: str) -> bool:
    """Whether OpenBLAS running the ``openblas`` kernel family (as :func:`kernels_in_use` reports it)
    stays within ``level``: its family is the level's or one of a lower level."""
    allowed = [LEVELS[name]["OPENBLAS_CORETYPE"].lower() for name in list(LEVELS)[:list(LEVELS).index(level) + 1]]
    return openblas.lower() in allowed


def _openvino_primitives() -> list[str]:
    """The primitive types of OpenVINO's compiled RNet (bundled weights)."""
    import openvino

    from mtcnn_lab.nets.openvino import openvino_model
    from mtcnn_lab.weights.sets import load_weights

    model = openvino_model(load_weights("zhang2016").nets()["rnet"])
    compiled = openvino.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    info = [op.get_rt_info() for op in compiled.get_runtime_model().get_ordered_ops()]
    return sorted({rt["primitiveType"].astype(str) for rt in info if "primitiveType" in rt})


def kernels_in_use() -> dict[str, str]:
    """What each runtime picked in this process: OpenVINO's convolution primitive (e.g.
    ``brgconv_avx2_f32``), torch's CPU capability, numba's target CPU, OpenBLAS's kernel family, and
    that ONNX Runtime cannot be capped. A runtime that is not installed says so."""
    report: dict[str, str] = {}
    try:
        report["openvino"] = " ".join(p for p in _openvino_primitives() if "conv" in p or "jit" in p)
    except ImportError:
        report["openvino"] = "not installed"
    try:
        import torch

        report["torch"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:
        report["torch"] = "not installed"
    import numba.core.config
    from threadpoolctl import threadpool_info

    report["numba"] = numba.core.config.CPU_NAME or "host"
    report["openblas"] = " ".join(sorted({str(i.get("architecture")) for i in threadpool_info()
                                          if i.get("internal_api") == "openblas"})) or "not loaded"
    report["onnxruntime"] = "no cap: MLAS dispatches on the CPU's own flags"
    return report


def run_under_levels(command: Sequence[str], levels: Sequence[str], cwd: str | os.PathLike | None = None,
                     progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Run ``command`` once per ISA level, each in a new process under that level's caps, and return
    ``{level: the JSON it printed on stdout}``; ``"{level}"`` in an argument is replaced by the level.
    ``CalledProcessError`` when a run fails."""
    results = {}
    for level in levels:
        if progress is not None:
            progress(level)
        with tempfile.TemporaryFile("w+") as out:
            subprocess.run([arg.replace("{level}", level) for arg in command], env=capped_environment(level),
                           stdout=out, check=True, cwd=cwd)
            out.seek(0)
            results[level] = json.load(out)
    return results


def add_level_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark that runs itself once per level (:func:`run_under_levels`): ``--levels``
    (default: every level this CPU runs) and the hidden ``--this-process LEVEL`` of each child run, read
    back as ``args.level``."""
    import argparse

    parser.add_argument("--levels", nargs="+", choices=list(LEVELS), default=None,
                        help="ISA levels (default: every level this CPU runs)")
    parser.add_argument("--this-process", dest="level", default=None, help=argparse.SUPPRESS)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mtcnn_lab.lab.isa LEVEL COMMAND...``: run COMMAND under LEVEL's caps; with no COMMAND,
    print the runtimes' kernels under them."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in LEVELS:
        print(f"usage: python -m mtcnn_lab.lab.isa {{{','.join(LEVELS)}}} [COMMAND...]", file=sys.stderr)
        return 2
    level, command = args[0], args[1:] or [sys.executable, "-c", "import json; from mtcnn_lab.lab.isa import "
                                                                  "kernels_in_use; print(json.dumps(kernels_in_use()))"]
    if level not in runnable_levels():
        print(f"error: this CPU cannot run {level} code (it runs {', '.join(runnable_levels()) or 'none'})",
              file=sys.stderr)
        return 2
    return subprocess.run(command, env=capped_environment(level)).returncode


if __name__ == "__main__":
    raise SystemExit(main())
