"""Whether a net's outputs for one input depend on the batch it came in, measured on this machine.

Float kernels (oneDNN, MLAS, OpenBLAS) choose their blocking and vector width by CPU and batch size,
so one input's outputs can differ in the last bits between a batch of one and a batch of many: on one
CPU and not on another, for one net and not another. :func:`measure_batch_limits` finds, for each
net, the largest batch size up to which every probed size gives each input the bits it gets alone;
the cascade (:func:`mtcnn_lab.cascade.stages.run_cascade_batch`) joins images into one call only up to that
size, so batched results equal one-image results on whatever CPU this runs.
"""

from __future__ import annotations

import logging

import numpy as np

from mtcnn_lab.backends.base import Backend

__all__ = ["PROBE_SIZES", "PROBE_SHAPES", "measure_batch_limits"]

log = logging.getLogger(__name__)

PROBE_SIZES = {
    "pnet": (2, 3, 4, 5, 8),
    "rnet": (2, 3, 4, 5, 7, 8, 16, 17, 32, 33, 64, 65, 128, 129, 256),
    "onet": (2, 3, 4, 5, 7, 8, 16, 17, 32, 33, 64),
}
"""Batch sizes probed per net, ascending: PNet's batch is images of one size (``detect_batch`` groups
of up to 4 or 8 frames), RNet's and ONet's are the crops of those images together. Sizes on both sides
of the powers of two catch kernels that switch blocking there."""

PROBE_SHAPES = {"pnet": ((3, 24, 40), (3, 97, 130)), "rnet": ((3, 24, 24),), "onet": ((3, 48, 48),)}
"""Input shapes (channels, height, width) probed per net: PNet at a small and a medium pyramid level."""

DISTINCT_INPUTS = 8
"""Different random inputs per probe; a batch of ``n`` holds them in a rotated, repeated order."""


def _run(backend: Backend, net: str, batch: np.ndarray) -> np.ndarray:
    if net == "pnet":
        return backend.run_pnet(batch)
    return backend.run_rnet(batch) if net == "rnet" else backend.run_onet(batch)


def _largest_invariant_size(backend: Backend, net: str, shape: tuple[int, ...], rng: np.random.Generator) -> int:
    inputs = rng.uniform(-1, 1, (DISTINCT_INPUTS, *shape)).astype(np.float32)
    alone = [_run(backend, net, inputs[i:i + 1])[0] for i in range(DISTINCT_INPUTS)]
    largest = 1
    for size in PROBE_SIZES[net]:
        order = (np.arange(size) + size) % DISTINCT_INPUTS  # each size puts the inputs at other positions
        outputs = _run(backend, net, inputs[order])
        if not all(np.array_equal(outputs[row], alone[i]) for row, i in enumerate(order)):
            worst = max(float(np.abs(outputs[row] - alone[i]).max()) for row, i in enumerate(order))
            log.info("%s: %s outputs in a batch of %d differ from one-input calls by up to %.3g; batches of "
                     "at most %d", backend.name, net, size, worst, largest)
            break
        largest = size
    return largest


def measure_batch_limits(backend: Backend, nets: tuple[str, ...] = ("pnet", "rnet", "onet"),
                         seed: int = 0) -> dict[str, int]:
    """For each of ``nets``: the largest batch size ``n`` of
    :data:`PROBE_SIZES` such that every probed size up to ``n`` gives each of
    :data:`DISTINCT_INPUTS` random inputs (every shape of :data:`PROBE_SHAPES`) exactly the output
    bits it gets in a batch of one; 1 when even a batch of two differs. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    return {net: min(_largest_invariant_size(backend, net, shape, rng) for shape in shapes)
            for net, shapes in PROBE_SHAPES.items() if net in nets}
