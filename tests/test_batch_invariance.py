"""Batch invariance is measured on the machine at hand, and the batched cascade honours the measurement.

A fake backend whose outputs change once a batch is larger than a chosen size stands for a CPU whose
kernels switch there; the limits it must get are computed by hand from :data:`PROBE_SIZES`.
"""

from __future__ import annotations

import numpy as np
import pytest

from mtcnn_lab.backends.batch_invariance import PROBE_SIZES, measure_batch_limits
from mtcnn_lab.backends.numpy import NumpyBackend
from mtcnn_lab.cascade.stages import call_groups, run_cascade, run_cascade_batch


class SwitchingBackend(NumpyBackend):
    """The numpy reference, but in batches larger than ``switch`` (per net) a net's outputs move by a few
    float32 ulps that depend on the batch size, as a kernel that changes its blocking there would."""

    def __init__(self, weights, switch: dict[str, int], limits: dict[str, int] | None = None):
        self.switch = switch
        self.calls: list[tuple[str, int]] = []  # (net, batch size) of every call
        super().__init__(weights)  # which measures the limits with the switch in place
        if limits is not None:
            self.batch_limits = limits

    def _run(self, net, batch):
        # one row at a time, so the reference itself cannot depend on the batch
        out = np.concatenate([super(SwitchingBackend, self)._run(net, row[None]) for row in batch]) \
            if len(batch) else super()._run(net, batch)
        self.calls.append((net, len(batch)))
        if len(batch) > self.switch.get(net, 10**9):
            out = out * np.float32(1 + len(batch) * 2.0**-22)
        return out


def largest_probed_at_most(net: str, size: int) -> int:
    """Independent of the code under test: the largest probed size that is at most ``size`` (or 1)."""
    return max([1, *[n for n in PROBE_SIZES[net] if n <= size]])


@pytest.mark.parametrize("switch", [{"rnet": 1}, {"rnet": 20, "onet": 4}, {"pnet": 3, "onet": 64}, {}])
def test_the_measured_limit_is_the_largest_probed_size_before_the_outputs_change(bundled_weights, switch):
    backend = SwitchingBackend(bundled_weights, switch)
    expected = {net: largest_probed_at_most(net, switch.get(net, 10**9)) for net in PROBE_SIZES}
    assert backend.batch_limits == expected
    assert measure_batch_limits(backend) == expected


def test_every_backend_measures_its_limits_when_built(bundled_weights):
    """The numpy reference's BLAS sums depend on the batch (PNet's and ONet's at least, on every CPU seen)."""
    limits = NumpyBackend(bundled_weights).batch_limits
    assert set(limits) == {"pnet", "rnet", "onet"}
    assert all(1 <= v <= max(PROBE_SIZES[net]) for net, v in limits.items())


@pytest.mark.parametrize(("rows", "limit", "groups"), [
    ([1, 1, 1, 1], 4, [[0, 1, 2, 3]]),
    ([1, 1, 1, 1], 3, [[0, 1, 2], [3]]),
    ([1, 1, 1, 1], 1, [[0], [1], [2], [3]]),
    ([5, 0, 3, 9, 2], 8, [[0, 2], [3], [4]]),  # 9 rows are alone; the empty image is in no call
    ([0, 0], 8, []),
    ([30, 40, 1], 64, [[0], [1, 2]]),
])
def test_call_groups_join_consecutive_images_up_to_the_limit(rows, limit, groups):
    assert call_groups(rows, limit) == groups


def test_a_batch_beyond_the_limit_never_reaches_the_net_and_the_results_are_one_image_s(bundled_weights, hopper):
    """With ONet switching at 2 crops and RNet at 40, batched detections still equal one-at-a-time ones."""
    backend = SwitchingBackend(bundled_weights, {"rnet": 40, "onet": 2})
    assert backend.batch_limits == {"pnet": 8, "rnet": 33, "onet": 2}
    images = [hopper, np.ascontiguousarray(hopper[:, ::-1]), np.roll(hopper, 40, axis=1)]
    singles = [run_cascade(image, backend, trace=True) for image in images]
    backend.calls.clear()
    batched = run_cascade_batch(images, backend, trace=True)
    assert [b.trace for b in batched] == [s.trace for s in singles]
    for one, many in zip(singles, batched, strict=True):
        np.testing.assert_array_equal(many.boxes, one.boxes)
        np.testing.assert_array_equal(many.onet_outputs, one.onet_outputs)
    sizes = {net: [n for name, n in backend.calls if name == net] for net in PROBE_SIZES}
    assert max(sizes["pnet"]) == 3  # all three images in one PNet call per level
    single_rnet = [len(s.trace["rnet_input_boxes"]) for s in singles]
    assert all(n <= 33 or n in single_rnet for n in sizes["rnet"]), sizes["rnet"]
    assert all(n <= 2 or n in [len(s.trace["onet_input_boxes"]) for s in singles] for n in sizes["onet"])


def test_ignoring_the_limits_would_change_the_bits(bundled_weights, hopper):
    """The fake is strong enough to be caught: told its limits are large, the batch differs from one image."""
    backend = SwitchingBackend(bundled_weights, {"rnet": 1}, limits={"pnet": 8, "rnet": 256, "onet": 64})
    images = [hopper, np.ascontiguousarray(hopper[:, ::-1])]
    singles = [run_cascade(image, backend, trace=True) for image in images]
    batched = run_cascade_batch(images, backend, trace=True)
    assert [b.trace["rnet_scores"] for b in batched] != [s.trace["rnet_scores"] for s in singles]


def test_no_images_give_no_proposals_and_no_detections(bundled_weights):
    from mtcnn_lab.cascade.stages import stage_pnet_batch
    from mtcnn_lab.params import CascadeParams

    backend = NumpyBackend(bundled_weights)
    assert stage_pnet_batch([], backend, CascadeParams(), []) == []
    assert run_cascade_batch([], backend) == []
