"""The cascade's arithmetic against values worked out by hand or by an independent method (pixel
counting, the textbook formula), without ``../shared``: IoU, pyramid scales and level sizes, PNet's
probability and proposals, crops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtcnn_lab.cascade.boxes import iou
from mtcnn_lab.cascade.crops import crop_boxes
from mtcnn_lab.cascade.proposals import face_probability_map, pnet_proposals
from mtcnn_lab.params import level_size, pyramid_scales

# ---------------------------------------------------------------------------------------------
# IoU
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "expected"), [
    ((0, 0, 10, 10), (5, 5, 10, 10), 25 / 175),  # a quarter of each overlaps
    ((0, 0, 10, 10), (2, 2, 4, 4), 16 / 100),  # one inside the other
    ((0, 0, 10, 10), (10, 0, 10, 10), 0.0),  # edges touch: no area in common
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
    ((0, 0, 4, 10), (0, 0, 10, 4), 16 / 64),  # a cross: 4x4 in common, 40 + 40 - 16 in all
    ((0.5, 0.5, 2, 2), (1.5, 1.5, 2, 2), 1 / 7),  # continuous coordinates
])
def test_iou_of_hand_computed_pairs(a, b, expected):
    assert iou(np.array([a]), np.array([b]))[0, 0] == pytest.approx(expected, abs=1e-12)


def _raster_iou(a, b, size=64):
    """IoU by counting pixels of two integer boxes painted on a grid: independent of the formula."""
    grid_a, grid_b = np.zeros((size, size), bool), np.zeros((size, size), bool)
    grid_a[a[1]:a[1] + a[3], a[0]:a[0] + a[2]] = True
    grid_b[b[1]:b[1] + b[3], b[0]:b[0] + b[2]] = True
    union = (grid_a | grid_b).sum()
    return (grid_a & grid_b).sum() / union


integer_box = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(1, 30), st.integers(1, 30))


@settings(max_examples=300, deadline=None)
@given(integer_box, integer_box)
def test_iou_equals_pixel_counting(a, b):
    assert iou(np.array([a]), np.array([b]))[0, 0] == pytest.approx(_raster_iou(a, b), abs=1e-12)


def test_iou_matrix_shape_and_order():
    a = np.array([[0, 0, 10, 10], [20, 20, 5, 5]])
    b = np.array([[0, 0, 10, 10], [5, 5, 10, 10], [20, 20, 5, 5]])
    np.testing.assert_allclose(iou(a, b), [[1, 25 / 175, 0], [0, 0, 1]])


# ---------------------------------------------------------------------------------------------
# pyramid scales and level sizes (docs/openface_mtcnn.md §3)
# ---------------------------------------------------------------------------------------------


def test_pyramid_scales_of_a_640x480_frame_by_hand():
    # first scale 12 / 60 = 0.2; the shorter side 480 * 0.2 = 96 px shrinks by 0.709 per level while it
    # holds PNet's 12 px: 96 * 0.709^i >= 12  <=>  i <= ln(1/8) / ln(0.709) = 6.05  ->  7 levels
    scales = pyramid_scales(480, 640)
    assert len(scales) == 7
    np.testing.assert_allclose(scales, [0.2 * 0.709 ** i for i in range(7)], rtol=1e-15)


@pytest.mark.parametrize(("h", "w", "levels"), [
    (60, 100, 1),  # the shorter side is the minimum face: one level (scale 0.2: 12 px)
    (85, 85, 2),  # 85 * 0.2 = 17 px, * 0.709 = 12.05 px: two levels
    (84, 84, 1),  # 84 * 0.2 * 0.709 = 11.91 px: one
    (42, 1000, 0),  # below min_face * factor = 42.54 px: OpenFace throws; no levels here
    (0, 10, 0),
])
def test_pyramid_level_count_at_the_edges(h, w, levels):
    assert len(pyramid_scales(h, w)) == levels


def test_pyramid_scales_follow_min_face_and_factor():
    assert pyramid_scales(480, 640, min_face=40, factor=0.5) == [0.3, 0.15, 0.075, 0.0375]  # 144, 72, 36, 18 px


@pytest.mark.parametrize(("h", "w", "scale", "expected"), [
    (480, 640, 0.2, (96, 128)),
    (480, 640, 0.1418, (69, 91)),  # 68.064 and 90.752 round up
    (1, 1, 0.01, (1, 1)),
])
def test_level_size_rounds_up(h, w, scale, expected):
    assert level_size(h, w, scale) == expected
    assert level_size(h, w, scale) == (math.ceil(h * scale), math.ceil(w * scale))


# ---------------------------------------------------------------------------------------------
# PNet's probability map and proposals (docs/openface_mtcnn.md §5)
# ---------------------------------------------------------------------------------------------


def test_face_probability_is_the_logistic_of_the_logit_difference():
    logits = np.array([[[0.0, 2.0, -3.0, 20.0]], [[0.0, 0.0, 1.0, 0.0]]], np.float32)  # (2, 1, 4)
    np.testing.assert_allclose(face_probability_map(logits)[0],
                               [0.5, 1 / (1 + math.e ** 2), 1 / (1 + math.e ** -4), 1 / (1 + math.e ** 20)],
                               rtol=1e-6)
    assert face_probability_map(np.array([[[-30.0]], [[0.0]]], np.float32))[0, 0] == np.float32(1.0)  # saturates


def test_proposals_of_a_hand_made_heat_map():
    prob = np.zeros((3, 4), np.float32)  # (h, w) cells
    prob[2, 0] = 0.9  # x 0, y 2
    prob[0, 3] = 0.6  # x 3, y 0: exactly the threshold, kept (>=)
    prob[1, 1] = 0.59  # below
    regression = np.arange(4 * 3 * 4, dtype=np.float32).reshape(4, 3, 4) / 100
    boxes, scores, regs = pnet_proposals(prob, regression, scale=0.5, threshold=0.6)
    # column by column: x 0 first. Cell (x, y) at scale 0.5: corners int((2x + 1) / 0.5) .. int((2x + 12) / 0.5)
    # x 0, y 2: x1 = 2, y1 = int(5 / 0.5) = 10, x2 = 24, y2 = int(16 / 0.5) = 32
    # x 3, y 0: x1 = int(7 / 0.5) = 14, y1 = 2, x2 = int(18 / 0.5) = 36, y2 = 24
    np.testing.assert_array_equal(boxes, [[2, 10, 22, 22], [14, 2, 22, 22]])
    np.testing.assert_array_equal(scores, np.array([0.9, 0.6], np.float32))
    np.testing.assert_array_equal(regs, [regression[:, 2, 0], regression[:, 0, 3]])


def test_proposal_corners_truncate():
    prob = np.ones((1, 1), np.float32)
    boxes, _, _ = pnet_proposals(prob, np.zeros((4, 1, 1), np.float32), scale=0.3)
    # int(1 / 0.3) = int(3.33) = 3 and int(12 / 0.3) = 40 (float32: 40.000002)
    np.testing.assert_array_equal(boxes, [[3, 3, 37, 37]])


def test_no_cell_above_threshold_gives_empty_arrays():
    boxes, scores, regs = pnet_proposals(np.zeros((2, 2), np.float32), np.zeros((4, 2, 2), np.float32), 1.0)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and regs.shape == (0, 4)


# ---------------------------------------------------------------------------------------------
# crops (docs/openface_mtcnn.md §7)
# ---------------------------------------------------------------------------------------------


def _normalised(v):
    return (np.float32(v) - np.float32(127.5)) * np.float32(0.0078125)


def test_crop_of_a_box_inside_the_image_by_hand():
    image = np.zeros((6, 6, 3), np.uint8)
    image[..., 0] = np.arange(36).reshape(6, 6)  # B
    image[..., 2] = 200  # R
    # 1-based box x=2, y=3, side 1: the 0-based pixels x 1..2, y 2..3 (side + 1 = 2), resized 2 -> 2: a copy
    crop = crop_boxes(image, np.array([[2, 3, 1, 1]]), 2)[0]
    np.testing.assert_array_equal(crop[0], _normalised(200) * np.ones((2, 2), np.float32))  # R first
    np.testing.assert_array_equal(crop[1], _normalised(0) * np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(crop[2], _normalised(np.array([[13, 14], [19, 20]])))  # B last


def test_crop_outside_the_image_is_black():
    image = np.full((4, 4, 3), 255, np.uint8)
    crop = crop_boxes(image, np.array([[-10, -10, 3, 3]]), 4)[0]
    np.testing.assert_array_equal(crop, _normalised(0) * np.ones((3, 4, 4), np.float32))
    half = crop_boxes(image, np.array([[0, 1, 1, 1]]), 2)[0]  # pixels x -1..0: the left column outside
    np.testing.assert_array_equal(half[:, :, 0], _normalised(0) * np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(half[:, :, 1], _normalised(255) * np.ones((3, 2), np.float32))


# ---------------------------------------------------------------------------------------------
# the pyramid's levels
# ---------------------------------------------------------------------------------------------


def test_pyramid_levels_of_a_640x480_frame():
    from concurrent.futures import ThreadPoolExecutor

    from mtcnn_lab.cascade.pyramid import pyramid_levels
    from mtcnn_lab.cascade.resize import resized_input

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    levels = pyramid_levels(image)
    # 7 levels (see above); sizes ceil(480 s) x ceil(640 s): 96x128 at s = 0.2, then 69x91 at 0.1418, ...
    assert [lvl.shape for _, lvl in levels][:2] == [(3, 96, 128), (3, 69, 91)]
    assert [s for s, _ in levels] == pyramid_scales(480, 640)
    for scale, level in levels:
        assert level.dtype == np.float32 and level.shape == (3, *level_size(480, 640, scale))
        np.testing.assert_array_equal(level, resized_input(image, level.shape[1:]))
    with ThreadPoolExecutor(1) as pool:  # the second thread resizes the later levels: the same arrays
        for (s1, a), (s2, b) in zip(levels, pyramid_levels(image, pool=pool), strict=True):
            assert s1 == s2
            np.testing.assert_array_equal(a, b)
    assert pyramid_levels(image[:40, :40]) == []  # too small for a 60 px face
    assert len(pyramid_levels(image, min_face=120)) == len(pyramid_scales(480, 640, 120))


class RecordingPool:
    """An executor that runs what it is given at once and records how many levels each task resized."""

    def __init__(self):
        self.tasks: list[int] = []

    def submit(self, fn, image, plan):
        from concurrent.futures import Future

        self.tasks.append(len(plan))
        future = Future()
        future.set_result(fn(image, plan))
        return future


@pytest.mark.parametrize(("size", "offloaded"), [(60, []), (85, [1]), (480, [6])])
def test_the_pool_resizes_every_level_after_the_first(size, offloaded):
    from mtcnn_lab.cascade.pyramid import pyramid_levels

    image = np.full((size, size, 3), 77, np.uint8)  # 1, 2 and 7 levels (see the level counts above)
    pool = RecordingPool()
    levels = pyramid_levels(image, pool=pool)
    assert pool.tasks == offloaded and len(levels) == 1 + sum(offloaded)
    assert [s for s, _ in levels] == pyramid_scales(size, size)


def test_pyramid_level_is_rgb_normalised():
    from mtcnn_lab.cascade.pyramid import pyramid_levels

    image = np.zeros((60, 60, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 0, 128, 255  # B, G, R
    [(scale, level)] = pyramid_levels(image)  # one level: 60 px at scale 0.2 -> 12x12
    assert scale == pytest.approx(0.2) and level.shape == (3, 12, 12)
    np.testing.assert_array_equal(level[:, 5, 5], [_normalised(255), _normalised(128), _normalised(0)])


# ---------------------------------------------------------------------------------------------
# CascadeParams: OpenFace's defaults and the one-line errors at each bound
# ---------------------------------------------------------------------------------------------


def test_cascade_params_defaults_are_openfaces():
    from mtcnn_lab.params import FACE_CELL, OPENFACE_CORRECTION, CascadeParams

    p = CascadeParams()
    assert (p.min_face, p.factor, p.thresholds) == (60.0, 0.709, (0.6, 0.7, 0.7))
    assert (p.nms_per_scale, p.nms_pyramid, p.nms_rnet, p.nms_onet) == (0.5, 0.7, 0.7, 0.7)
    assert p.correction == OPENFACE_CORRECTION == (-0.0075, 0.2459, 1.0323, 0.7751) and FACE_CELL == 12


@pytest.mark.parametrize(("field", "value", "message"), [
    ("min_face", 11.9, r"min_face must be a number of pixels, at least 12 \(PNet's cell\), not 11.9"),
    ("min_face", float("nan"), "min_face must be a number of pixels, at least 12"),
    ("min_face", float("inf"), "min_face must be a number of pixels, at least 12 .*, not inf$"),
    ("min_face", "60", "min_face must be a number of pixels, at least 12 .*, not '60'$"),
    ("min_face", None, "min_face must be a number of pixels, at least 12 .*, not None$"),
    ("min_face", True, "min_face must be a number of pixels"),
    ("factor", 0.0, r"factor must be a number in \(0, 0.99\] .*, not 0.0"),
    ("factor", 1.0, r"factor must be a number in \(0, 0.99\] .*, not 1.0"),
    ("factor", 0.99999, r"each step closer to 1 adds pyramid levels; OpenFace uses 0.709\), not 0.99999"),
    ("thresholds", (0.6, 0.7), r"thresholds must be three numbers in \[0, 1\], not \(0.6, 0.7\)"),
    ("thresholds", (0.6, 0.7, 1.01), "thresholds must be three numbers"),
    ("thresholds", (-0.01, 0.7, 0.7), "thresholds must be three numbers"),
    ("thresholds", 0.5, "thresholds must be three numbers .*, not 0.5$"),
    ("thresholds", ("a", "b", "c"), "thresholds must be three numbers"),
    ("nms_per_scale", 1.01, r"nms_per_scale must be a number in \[0, 1\], not 1.01"),
    ("nms_pyramid", -0.1, "nms_pyramid must be a number in"),
    ("nms_rnet", 2.0, "nms_rnet must be a number in"),
    ("nms_onet", -1.0, "nms_onet must be a number in"),
    ("nms_onet", "0.7", "nms_onet must be a number in"),
    ("correction", (0, 0, 1), "correction must be 4 finite numbers, not"),
    ("correction", None, "correction must be 4 finite numbers, not None"),
    ("correction", (float("nan"), 0, 1, 1), "correction must be 4 finite numbers"),
])
def test_cascade_params_refuse_out_of_range_values(field, value, message):
    from mtcnn_lab.errors import ParameterError
    from mtcnn_lab.params import CascadeParams

    with pytest.raises(ParameterError, match=message):
        CascadeParams(**{field: value})


@pytest.mark.parametrize(("field", "value"), [
    ("min_face", 12.0), ("min_face", np.float32(60)), ("factor", 0.5), ("factor", 0.99),
    ("thresholds", (0.0, 1.0, 0.5)), ("nms_per_scale", 0.0),
    ("nms_pyramid", 1.0), ("nms_rnet", 0.0), ("nms_onet", 1.0), ("correction", (0, 0, 1, 1)),
])
def test_cascade_params_accept_the_bounds(field, value):
    from mtcnn_lab.params import CascadeParams

    assert getattr(CascadeParams(**{field: value}), field) == value


def test_pyramid_levels_follow_the_factor():
    from mtcnn_lab.cascade.pyramid import pyramid_levels

    image = np.zeros((480, 640, 3), np.uint8)
    # 96, 48, 24 and 12 px on the short side: floor(ln(60/480) / ln(0.5)) + 1 = 4 levels
    assert [s for s, _ in pyramid_levels(image, factor=0.5)] == pyramid_scales(480, 640, factor=0.5) == [
        0.2, 0.1, 0.05, 0.025]


def test_a_frame_smaller_than_the_minimum_face_has_no_level():
    # between min_face * factor (42.54 px) and min_face (60 px) OpenFace's formula gives no level either
    assert pyramid_scales(50, 1000) == [] and pyramid_scales(59, 59) == []


def test_proposals_take_float64_maps_as_float32():
    prob = np.array([[0.60000001]])  # below float32's 0.6 in double, equal to it in float32: kept
    boxes, scores, regs = pnet_proposals(prob, np.full((4, 1, 1), 0.1), scale=1.0, threshold=0.6)
    assert len(boxes) == 1 and scores.dtype == np.float32 and regs.dtype == np.float32
    np.testing.assert_array_equal(regs, np.full((1, 4), np.float32(0.1)))


def test_crops_are_float32_and_the_same_with_a_pool_and_float_boxes():
    from concurrent.futures import ThreadPoolExecutor

    from mtcnn_lab.cascade.crops import SPLIT_MIN

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    boxes = np.column_stack([rng.integers(-5, 50, 2 * SPLIT_MIN + 1), rng.integers(-5, 50, 2 * SPLIT_MIN + 1),
                             rng.integers(1, 30, 2 * SPLIT_MIN + 1)])[:, [0, 1, 2, 2]]
    alone = crop_boxes(image, boxes, 24)
    assert alone.dtype == np.float32 and alone.shape == (2 * SPLIT_MIN + 1, 3, 24, 24)
    for k in (0, SPLIT_MIN, 2 * SPLIT_MIN):  # each box on its own gives its crop: the split loses none
        np.testing.assert_array_equal(alone[k], crop_boxes(image, boxes[k:k + 1], 24)[0])
    with ThreadPoolExecutor(1) as pool:
        np.testing.assert_array_equal(crop_boxes(image, boxes, 24, pool), alone)
        np.testing.assert_array_equal(crop_boxes(image, boxes[:SPLIT_MIN], 24, pool), alone[:SPLIT_MIN])
    np.testing.assert_array_equal(crop_boxes(image, boxes.astype(np.float32), 24), alone)


def test_crops_of_fractional_boxes_are_those_of_their_integer_parts():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    boxes = np.array([[10, 12, 20, 20], [3, 40, 15, 15]])
    np.testing.assert_array_equal(crop_boxes(image, boxes + 0.4, 24), crop_boxes(image, boxes, 24))


def test_one_of_returns_a_choice_or_names_them_all_in_one_line():
    from mtcnn_lab.checks import one_of
    from mtcnn_lab.errors import ParameterError

    assert one_of("rnet", ("pnet", "rnet"), "net") == "rnet"
    for wrong in ("RNet", None, 3):
        with pytest.raises(ParameterError, match=rf"^unknown net {wrong!r}; choose one of pnet, rnet \(see X\)$"):
            one_of(wrong, ("pnet", "rnet"), "net", " (see X)")
