"""The comparison helpers the notebooks 03 and 04 use: real network inputs and PNet offset shifts."""

from __future__ import annotations

import numpy as np
import pytest

from mtcnn_lab.backends.base import ONE_INPUT_PER_CALL
from mtcnn_lab.backends.numpy import NumpyBackend
from mtcnn_lab.cascade.pyramid import pyramid_levels
from mtcnn_lab.cascade.stages import stage_pnet
from mtcnn_lab.io.images import read_image
from mtcnn_lab.lab.agreement import pnet_offset_shift
from mtcnn_lab.lab.layers import cascade_net_inputs
from mtcnn_lab.params import CascadeParams

from .conftest import require_shared


@pytest.fixture(scope="module")
def sample():
    return read_image(require_shared("samples", "sample1.jpg"))


class ShiftedOffsets:
    """The reference PNet with a constant added to its box offsets (channels 2-5)."""

    name = "shifted"
    batch_limits = ONE_INPUT_PER_CALL
    device_nets = None

    def __init__(self, weights, delta):
        self.backend, self.delta = NumpyBackend(weights), delta

    def run_pnet(self, images):
        heat = self.backend.run_pnet(images).copy()
        heat[:, 2:6] += self.delta
        return heat


def test_cascade_net_inputs_are_what_the_cascade_feeds(sample, bundled_weights):
    batches = cascade_net_inputs(sample, bundled_weights)
    level = pyramid_levels(sample)[0][1]
    np.testing.assert_array_equal(batches["pnet"], level[None])
    assert batches["rnet"].shape[1:] == (3, 24, 24) and len(batches["rnet"]) > 0
    assert batches["onet"].shape[1:] == (3, 48, 48) and len(batches["onet"]) > 0
    assert batches["rnet"].dtype == batches["onet"].dtype == np.float32
    capped = cascade_net_inputs(sample, bundled_weights, max_crops=2)
    np.testing.assert_array_equal(capped["rnet"], batches["rnet"][:2])
    assert len(capped["onet"]) <= 2


def test_cascade_net_inputs_without_boxes_gives_empty_batches(bundled_weights):
    flat = np.full((120, 160, 3), 128, np.uint8)
    batches = cascade_net_inputs(flat, bundled_weights)
    assert batches["pnet"].shape[:2] == (1, 3)
    assert batches["rnet"].shape == (0, 3, 24, 24) and batches["onet"].shape == (0, 3, 48, 48)


def test_cascade_net_inputs_rejects_too_small_images(bundled_weights):
    with pytest.raises(ValueError, match="too small"):
        cascade_net_inputs(np.zeros((20, 20, 3), np.uint8), bundled_weights)


def test_offset_shift_of_a_backend_with_itself_is_zero(sample, bundled_weights):
    reference = NumpyBackend(bundled_weights)
    shift = pnet_offset_shift(sample, reference, reference)
    assert shift["proposals"] == len(stage_pnet(sample, reference, CascadeParams())) > 0
    assert shift["moved"] == 0 and shift["offsets_max_abs"] == 0.0
    assert shift["identical"] == shift["proposals_other"] == shift["proposals"]
    assert len(shift["shifts"]) == shift["proposals"] and not shift["shifts"].any()


def test_offset_shift_comes_from_the_offsets_alone(sample, bundled_weights):
    # offsets + 0.25 move every box by a quarter of its size: every proposal moves, the same cells are kept
    shift = pnet_offset_shift(sample, NumpyBackend(bundled_weights), ShiftedOffsets(bundled_weights, 0.25))
    assert shift["moved"] == shift["proposals"] > 0
    assert shift["offsets_max_abs"] == pytest.approx(0.25, abs=1e-6)
    assert shift["shifts"].min() >= 2
    assert shift["proposals_other"] == shift["proposals"] and shift["identical"] == 0


def test_fp16_offsets_move_few_proposals_by_at_most_a_pixel(sample, bundled_weights):
    shift = pnet_offset_shift(sample, NumpyBackend(bundled_weights), NumpyBackend(bundled_weights, "fp16-all"))
    assert 0 < shift["offsets_max_abs"] < 0.01
    assert shift["moved"] < shift["proposals"] / 2
    assert shift["shifts"].max(initial=0) <= 1
