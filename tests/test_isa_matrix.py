"""The parity and batch-identity tests under every instruction-set level this CPU can emulate.

Each level runs in a new process whose runtimes are capped by environment variables
(:mod:`mtcnn_lab.lab.isa`): an AVX-512 machine also proves what an AVX2-only or SSE4.2 laptop computes, for the
runtimes that honour a cap. Slow (a few minutes): ``./run_tests.sh -m "not slow"`` leaves it out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mtcnn_lab.lab.isa import LEVELS, capped_environment, runnable_levels

from .conftest import DEV_REFERENCE, NO_SHARED

ROOT = Path(__file__).resolve().parents[1]
UNDER_CAP = [
    "tests/test_parity.py",
    "tests/test_batch_invariance.py",
    "tests/test_resize.py",
    "tests/test_detector.py::test_images_of_one_size_batched_through_the_nets_give_the_faces_of_one_at_a_time",
    "tests/test_video.py::test_two_workers_give_the_entries_of_one",
]
"""What runs under each cap: C++ parity of every FP32 backend through detect, detect_batch and detect_video,
the batch identity, and the compiled (numba) resize against OpenFace's bytes."""

EXPECTED_KERNELS = {"sse4.2": ("sse4", "DEFAULT", "nehalem"), "avx2": ("avx2", "AVX2", "haswell"),
                    "avx512": ("avx512", "AVX512", "skylake-avx512")}
"""Per level, what OpenVINO's primitives contain, torch's capability and numba's CPU name."""


def test_the_levels_this_cpu_runs_include_its_own_and_every_one_below():
    levels = runnable_levels()
    assert levels == list(LEVELS)[:len(levels)]
    assert runnable_levels({"sse4_2", "avx2", "fma"}) == ["sse4.2", "avx2"]
    assert runnable_levels({"sse4_2"}) == ["sse4.2"]


def test_a_cap_keeps_what_the_machine_set_and_sets_the_rest():
    env = capped_environment("avx2", {"OPENBLAS_CORETYPE": "Haswell", "PATH": "/bin"})
    assert env["OPENBLAS_CORETYPE"] == "Haswell" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env["PATH"] == "/bin"
    assert capped_environment("sse4.2", {})["OPENBLAS_CORETYPE"] == "Nehalem"
    with pytest.raises(ValueError, match="unknown ISA level"):
        capped_environment("avx9")


@pytest.mark.slow
@pytest.mark.parametrize("level", runnable_levels())
def test_parity_and_batch_identity_hold_under_the_cap(level):
    if not DEV_REFERENCE.is_file():
        pytest.skip(NO_SHARED)
    env = capped_environment(level)
    probe = subprocess.run([sys.executable, "-c", "import json; from mtcnn_lab.lab.isa import kernels_in_use; "
                            "print(json.dumps(kernels_in_use()))"], env=env, cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-2000:]
    kernels = json.loads(probe.stdout)
    openvino, torch, numba = EXPECTED_KERNELS[level]
    assert openvino in kernels["openvino"] and torch == kernels["torch"] and numba == kernels["numba"], kernels
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *UNDER_CAP], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, f"under the {level} cap ({kernels}):\n{run.stdout[-4000:]}"
    assert " passed" in run.stdout.splitlines()[-1] and "skipped" not in run.stdout.splitlines()[-1], run.stdout[-500:]


def test_openblas_is_within_a_level_when_its_kernels_are_that_level_s_or_lower():
    from mtcnn_lab.lab.isa import openblas_within

    assert openblas_within("avx2", "Haswell") and openblas_within("avx512", "Haswell")
    assert not openblas_within("sse4.2", "Haswell") and not openblas_within("avx2", "SkylakeX")
    assert openblas_within("sse4.2", "NEHALEM")


def test_the_isa_command_runs_a_command_under_the_cap_and_refuses_unknown_levels(capfd):
    from mtcnn_lab.lab.isa import main

    assert main(["avx2", sys.executable, "-c", "import os; print(os.environ['ONEDNN_MAX_CPU_ISA'])"]) == 0
    assert capfd.readouterr().out.strip() == "AVX2"
    assert main(["avx9"]) == 2 and "usage" in capfd.readouterr().err
