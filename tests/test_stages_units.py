"""The cascade's stages (``mtcnn_lab.cascade.stages``) on net outputs written by hand, without ``../shared``.

A scripted backend stands in for the networks: its PNet heat maps, RNet and ONet outputs are chosen by
the test, so every box, score, landmark and trace entry that the stages make of them is worked out here
by hand from OpenFace's formulas (``docs/openface_mtcnn.md`` §5-§9): the proposal corners, the
regression, the squaring, which NMS (threshold, union or min) removes which box, the final correction.
These are the fast tests that ``scripts/mutation.py`` runs against the mutants of ``stages.py``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType

import numpy as np
import pytest

from mtcnn_lab.cascade.crops import crop_boxes
from mtcnn_lab.cascade.stages import (
    call_groups,
    crop_scores,
    onet_detections,
    rnet_refine,
    run_cascade,
    run_cascade_batch,
    run_on_crops,
    stage_pnet,
    stage_pnet_batch,
)
from mtcnn_lab.cascade.timer import StageTimer
from mtcnn_lab.errors import ParameterError
from mtcnn_lab.params import OPENFACE_CORRECTION, CascadeParams

F32 = np.float32
LOW = (2.0, 0.0)  # logits (non-face, face): probability 1 / (1 + e^2) = 0.119, below every threshold

# min_face 48 makes the first scale 12 / 48 = 0.25, exact in float32, so the corners below are exact.
# A 96 x 96 image has levels of 24, 18 and 13 px (0.25, 0.17725, 0.1256...): three heat maps.
PARAMS = CascadeParams(min_face=48, thresholds=(0.6, 0.75, 0.85), nms_per_scale=0.5, nms_pyramid=0.7,
                       nms_rnet=0.6, nms_onet=0.65)


def logistic(face_minus_nonface: float) -> float:
    return 1.0 / (1.0 + math.exp(-face_minus_nonface))


def heat_map(size: int | tuple[int, int],
             cells: dict[tuple[int, int], tuple[tuple[float, float], tuple[float, ...]]]) -> np.ndarray:
    """A (6, h, w) PNet output (``size`` h = w, or (h, w)): logits ``LOW`` everywhere but at ``cells``
    {(x, y): (logits, offsets)}."""
    heat = np.zeros((6, *np.broadcast_to(size, 2)), F32)
    heat[0], heat[1] = LOW
    for (x, y), (logits, offsets) in cells.items():
        heat[0:2, y, x] = logits
        heat[2:6, y, x] = offsets
    return heat


def marker(batch: np.ndarray) -> np.ndarray:
    """Which image each network input comes from: its red channel, de-normalised, at the centre pixel."""
    h, w = batch.shape[2] // 2, batch.shape[3] // 2
    return np.rint(batch[:, 0, h, w] / F32(0.0078125) + F32(127.5)).astype(int)


class ScriptedBackend:
    """A backend whose outputs the test writes: PNet's heat maps by (image marker, level width), RNet's and
    ONet's output rows by image marker. Every call's net and batch size is recorded."""

    name = "scripted"
    layer_taps = False
    device_nets = None

    def __init__(self, pnet: dict, rnet: dict, onet: dict, limits: dict[str, int] | None = None):
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.batch_limits = MappingProxyType(limits or {"pnet": 1, "rnet": 1, "onet": 1})
        self.calls: list[tuple[str, int]] = []

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        self.calls.append(("pnet", len(images)))
        size = ((images.shape[2] - 12) // 2 + 1, (images.shape[3] - 12) // 2 + 1)
        return np.stack([self.pnet.get((m, images.shape[3]), heat_map(size, {})) for m in marker(images)])

    def run_rnet(self, crops: np.ndarray) -> np.ndarray:
        self.calls.append(("rnet", len(crops)))
        return np.array([self.rnet[m] for m in marker(crops)], F32).reshape(-1, 6)

    def run_onet(self, crops: np.ndarray) -> np.ndarray:
        self.calls.append(("onet", len(crops)))
        return np.array([self.onet[m] for m in marker(crops)], F32).reshape(-1, 16)

    def run_layers(self, net, batch):  # pragma: no cover - the Backend protocol; never called here
        raise NotImplementedError

    def close(self) -> None:
        pass


def image(red: int) -> np.ndarray:
    """A 96 x 96 BGR image whose red channel is ``red`` everywhere (the marker) over a blue gradient."""
    img = np.zeros((96, 96, 3), np.uint8)
    img[..., 0] = np.arange(96, dtype=np.uint8)[None, :]
    img[..., 2] = red
    return img


A, B = 200, 50  # the two images' markers

# Image A, first level (scale 0.25, 7 x 7 heat map), by hand (docs §5: corners int((2c + 1) / s) and
# int((2c + 12) / s)):
#   cell (5, 5): p = 0.9526, box x 44..88 -> (44, 44, 44, 44), no offsets
#   cell (2, 1): p = 0.8808, box (20, 12, 44, 44), offsets (0.1, 0, -0.1, 0.05)
#   cell (3, 1): p = 0.7311, box (28, 12, 44, 44): IoU with (2, 1)'s = 36*44 / (2*1936 - 1584) = 0.692 > 0.5,
#                 so the per-scale NMS removes it (it would survive the 0.7 of the other NMS)
#   cell (6, 0): p = 0.5744 (logits 0, 0.3), below threshold 0.6: no box
# Image B, first level: cell (0, 0): p = 0.8808, box (4, 4, 44, 44); second level (18 px, 4 x 4 heat map,
#   scale 0.17725): cell (0, 0): p = 0.7311, box int(1 / 0.17725) = 5 .. int(12 / 0.17725) = 67 ->
#   (5, 5, 62, 62): IoU with (4, 4, 44, 44) = 43*43 / (1936 + 3844 - 1849) = 0.470, kept by the
#   cross-scale NMS (0.7) but removed by a 0.45 one.
PNET = {
    (A, 24): heat_map(7, {(5, 5): ((0, 3), (0, 0, 0, 0)), (2, 1): ((0, 2), (0.1, 0, -0.1, 0.05)),
                          (3, 1): ((0, 1), (0, 0, 0, 0)), (6, 0): ((0, 0.3), (0, 0, 0, 0))}),
    (B, 24): heat_map(7, {(0, 0): ((0, 2), (0, 0, 0, 0))}),
    (B, 18): heat_map(4, {(0, 0): ((0, 1), (0, 0, 0, 0))}),
}


def test_stage_pnet_boxes_by_hand():
    # A: picked by score, (44, 44, 44, 44) first. Regression of (20, 12, 44, 44) by (0.1, 0, -0.1, 0.05),
    # no +1: x1 = 20 + 4.4 = 24.4, y1 = 12, x2 = 64 - 4.4 = 59.6, y2 = 56 + 2.2 = 58.2 -> w 35.2, h 46.2;
    # squared: side 46.2 -> 46, x = 24.4 + 0.5 * (35.2 - 46.2) = 18.9 -> 18, y = 12.
    backend = ScriptedBackend(PNET, {}, {})
    np.testing.assert_array_equal(stage_pnet(image(A), backend, PARAMS), [[44, 44, 44, 44], [18, 12, 46, 46]])
    np.testing.assert_array_equal(stage_pnet(image(B), backend, PARAMS), [[4, 4, 44, 44], [5, 5, 62, 62]])
    tighter = CascadeParams(min_face=48, nms_pyramid=0.45)
    np.testing.assert_array_equal(stage_pnet(image(B), backend, tighter), [[4, 4, 44, 44]])


def test_stage_pnet_trace_by_hand():
    trace = {"pnet_scales": []}
    stage_pnet(image(A), ScriptedBackend(PNET, {}, {}), PARAMS, trace)
    assert trace["pnet_scales"] == [
        {"scale": 0.25, "pyr_wh": [24, 24], "heatmap_wh": [7, 7], "n_above_t1": 3, "n_after_nms05": 2},
        {"scale": 0.25 * 0.709, "pyr_wh": [18, 18], "heatmap_wh": [4, 4], "n_above_t1": 0, "n_after_nms05": 0},
        {"scale": 0.25 * 0.709 ** 2, "pyr_wh": [13, 13], "heatmap_wh": [1, 1], "n_above_t1": 0,
         "n_after_nms05": 0},
    ]
    assert trace["n_after_cross_scale_nms07"] == 2


def test_the_trace_gives_width_then_height():
    # 96 x 128 (h x w): levels 24 x 32, 18 x 23, 13 x 17; heat maps (h - 12) // 2 + 1 by (w - 12) // 2 + 1
    trace = {"pnet_scales": []}
    stage_pnet(np.zeros((96, 128, 3), np.uint8), ScriptedBackend({}, {}, {}), PARAMS, trace)
    assert [(s["pyr_wh"], s["heatmap_wh"]) for s in trace["pnet_scales"]] == [
        ([32, 24], [11, 7]), ([23, 18], [6, 4]), ([17, 13], [3, 1])]


def test_the_pnet_threshold_is_the_first():
    # cell (6, 0) at p = 0.5744 passes a first threshold of 0.55 (and no other threshold is read)
    params = CascadeParams(min_face=48, thresholds=(0.55, 1.0, 1.0))
    trace = {"pnet_scales": []}
    stage_pnet(image(A), ScriptedBackend(PNET, {}, {}), params, trace)
    assert trace["pnet_scales"][0]["n_above_t1"] == 4


def test_stage_pnet_batch_gives_each_image_its_boxes_in_calls_up_to_the_limit():
    backend = ScriptedBackend(PNET, {}, {}, limits={"pnet": 2, "rnet": 1, "onet": 1})
    images = [image(A), image(B), image(A)]
    traces = [{"pnet_scales": []}, None, {"pnet_scales": []}]
    boxes = stage_pnet_batch(images, backend, PARAMS, traces)
    for got, img in zip(boxes, images, strict=True):
        np.testing.assert_array_equal(got, stage_pnet(img, ScriptedBackend(PNET, {}, {}), PARAMS))
    assert [n for net, n in backend.calls] == [2, 1] * 3  # three levels, images {0, 1} then {2}
    assert traces[0] == traces[2] and len(traces[0]["pnet_scales"]) == 3
    assert stage_pnet_batch([], backend, PARAMS, []) == []


def test_an_image_without_levels_has_no_proposals():
    boxes = stage_pnet(np.zeros((40, 40, 3), np.uint8), ScriptedBackend({}, {}, {}), PARAMS)
    assert boxes.shape == (0, 4) and boxes.dtype == np.int64


def test_crop_scores_take_a_float32_exp_then_a_double_division():
    # OpenFace's order of precisions: float32 difference, float32 exp (std::exp(float)), then 1 / (1 + e) in
    # double; a float64 exp kept in double rounds differently on a large share of inputs. The float exp is
    # the correctly rounded one, worked out here with Python's math.exp, on any CPU.
    rng = np.random.default_rng(3)
    outputs = rng.normal(0, 4, (2000, 6)).astype(F32)
    e = [float(F32(math.exp(float(F32(a - b))))) for a, b in outputs[:, :2]]
    expected = np.array([F32(1.0 / (1.0 + v)) for v in e], F32)
    np.testing.assert_array_equal(crop_scores(outputs), expected)


def test_crop_scores_are_float32_logistics():
    outputs = np.array([[0, 3, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, -2, 0, 0, 0, 0], [0, 200, 0, 0, 0, 0]], F32)
    scores = crop_scores(outputs)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, [logistic(3), 0.5, logistic(-2), 1.0], rtol=1e-7)
    assert crop_scores(np.array([[200, 0]], F32))[0] == 0.0  # exp overflows to inf: probability 0


def test_rnet_refine_by_hand():
    boxes = np.array([[10, 10, 40, 40], [12, 10, 40, 40], [100, 100, 30, 30], [50, 60, 20, 20]], np.int64)
    outputs = np.array([[0, 3, 0.05, 0.1, 0, -0.05],  # p 0.953: kept, regressed
                        [0, 2, 0, 0, 0, 0],  # p 0.881: IoU 38*40 / (3200 - 1520) = 0.905 with the first
                        [0, 0.8, 0, 0, 0, 0],  # p 0.690: below the second threshold (0.75)
                        [0, 1.2, 0, 0.1, 0, 0]], F32)  # p 0.769, the third threshold would drop it
    trace: dict = {}
    refined = rnet_refine(boxes, outputs, PARAMS, trace)
    # first: x1 = 10 + 2 = 12, y1 = 10 + 4 = 14, x2 = 50, y2 = 50 - 2 = 48: w 38, h 34 -> side 38, y = 14 - 2
    # last: y1 = 60 + 2 = 62, y2 = 80: w 20, h 18 -> side 20, y = 62 - 1 = 61
    np.testing.assert_array_equal(refined, [[12, 12, 38, 38], [50, 61, 20, 20]])
    np.testing.assert_allclose(trace["rnet_scores"], [logistic(3), logistic(2), logistic(0.8), logistic(1.2)],
                               rtol=1e-6)
    assert trace["rnet_input_boxes"] == boxes.tolist()
    assert (trace["n_rnet_pass"], trace["n_after_rnet_nms07"]) == (3, 2)


def test_rnet_nms_threshold_is_its_own():
    # the two boxes' IoU is 0.905: a 0.95 RNet NMS keeps both, in score order
    boxes = np.array([[10, 10, 40, 40], [12, 10, 40, 40]], np.int64)
    outputs = np.array([[0, 2, 0, 0, 0, 0], [0, 3, 0, 0, 0, 0]], F32)
    loose = CascadeParams(nms_rnet=0.95, nms_per_scale=0.1, nms_pyramid=0.1, nms_onet=0.1)
    np.testing.assert_array_equal(rnet_refine(boxes, outputs, loose), [[12, 10, 40, 40], [10, 10, 40, 40]])


def onet_row(logits, offsets=(0, 0, 0, 0), xs=(0.25, 0.5, 0.75, 0.0, 1.0), ys=(0.5, 0.1, 0.9, 0.3, 0.6)):
    return [*logits, *offsets, *xs, *ys]


def test_onet_detections_by_hand():
    boxes = np.array([[20, 30, 39, 39], [25, 35, 19, 19], [60, 10, 29, 29], [0, 0, 9, 9]], np.int64)
    outputs = np.array([onet_row((0, 3)),  # p 0.953: a face
                        onet_row((0, 2)),  # p 0.881, inside the first: "min" overlap 1 > 0.65 (IoU only 0.25)
                        onet_row((0, 2.5), (0.1, -0.1, 0.0, 0.2)),  # p 0.924: a second face, regressed
                        onet_row((0, 1.5))], F32)  # p 0.818: below the third threshold (0.85)
    trace: dict = {}
    faces = onet_detections(boxes, outputs, PARAMS, trace)
    # regression with +1: (20, 30, 40, 40); (60, 10, 30, 30) by (0.1, -0.1, 0, 0.2): x1 = 63, y1 = 7,
    # x2 = 90, y2 = 40 + 6 = 46 -> (63, 7, 27, 39)
    np.testing.assert_allclose(faces.boxes_pre_correction, [[20, 30, 40, 40], [63, 7, 27, 39]], atol=1e-5)
    c = OPENFACE_CORRECTION
    expected = [[x + w * c[0], y + h * c[1], w * c[2], h * c[3]] for x, y, w, h in [(20, 30, 40, 40), (63, 7, 27, 39)]]
    np.testing.assert_allclose(faces.boxes, expected, atol=1e-4)
    np.testing.assert_allclose(faces.confidences, [logistic(3), logistic(2.5)], rtol=1e-6)
    # landmarks: (side + 1) * offset + corner - 1 with side 39 and 29 (the boxes before the +1)
    xs, ys = np.array([0.25, 0.5, 0.75, 0.0, 1.0]), np.array([0.5, 0.1, 0.9, 0.3, 0.6])
    np.testing.assert_allclose(faces.landmarks[0], np.stack([40 * xs + 19, 40 * ys + 29], 1), atol=1e-5)
    np.testing.assert_allclose(faces.landmarks[1], np.stack([30 * xs + 59, 30 * ys + 9], 1), atol=1e-5)
    np.testing.assert_array_equal(faces.onet_input_boxes, [[20, 30, 39, 39], [60, 10, 29, 29]])
    np.testing.assert_array_equal(faces.onet_outputs, outputs[[0, 2]])
    assert faces.onet_outputs.dtype == np.float32 and faces.boxes.dtype == np.float32
    assert trace["onet_input_boxes"] == boxes.tolist() and len(trace["onet_scores"]) == 4


def test_onet_nms_is_by_the_smaller_area():
    # with its own threshold: a 1.0 ONet NMS keeps the box inside the other
    boxes = np.array([[20, 30, 39, 39], [25, 35, 19, 19]], np.int64)
    outputs = np.array([onet_row((0, 3)), onet_row((0, 2))], F32)
    assert len(onet_detections(boxes, outputs, PARAMS)) == 1
    params = CascadeParams(thresholds=(0.6, 0.75, 0.85), nms_onet=1.0, nms_rnet=0.1, nms_pyramid=0.1,
                           nms_per_scale=0.1)
    assert len(onet_detections(boxes, outputs, params)) == 2


def test_no_correction_leaves_the_regressed_boxes():
    boxes = np.array([[20, 30, 39, 39]], np.int64)
    faces = onet_detections(boxes, np.array([onet_row((0, 3))], F32), CascadeParams(correction=(0, 0, 1, 1)))
    np.testing.assert_array_equal(faces.boxes, [[20, 30, 40, 40]])


def test_run_on_crops_gives_each_image_the_outputs_of_its_own_crops():
    def means(crops):  # one output row per crop: its mean and its image's marker
        return np.stack([crops.mean(axis=(1, 2, 3)), marker(crops).astype(F32)], 1)

    images = [image(A), image(B), image(A), image(B)]
    boxes = [np.array([[10, 10, 30, 30], [40, 20, 20, 20]]), np.zeros((0, 4), np.int64),
             np.array([[5, 60, 24, 24]]), np.array([[0, 0, 96, 96], [30, 30, 10, 10], [70, 70, 40, 40]])]
    timer = StageTimer()
    for limit in (1, 3, 100):
        outputs = run_on_crops(images, boxes, means, 24, 2, limit, timer, "rnet")
        for img, b, out in zip(images, boxes, outputs, strict=True):
            alone = means(np.stack([_crop(img, box) for box in b])) if len(b) else np.zeros((0, 2), F32)
            np.testing.assert_array_equal(out, alone)
    assert set(timer.seconds) == {"crops", "rnet"}
    empty = run_on_crops(images[:2], [np.zeros((0, 4), np.int64)] * 2, means, 24, 16, 4, timer, "onet")
    assert [o.shape for o in empty] == [(0, 16), (0, 16)]


def _crop(img, box):
    """One crop alone (``crop_boxes`` is tested on its own in ``test_cascade_units.py``)."""
    return crop_boxes(img, np.array([box]), 24)[0]


@pytest.mark.parametrize(("rows", "limit", "groups"), [
    ([1, 1, 1], 2, [[0, 1], [2]]),
    ([3, 0, 2, 5], 5, [[0, 2], [3]]),
    ([6, 1], 5, [[0], [1]]),
    ([0, 0], 3, []),
])
def test_call_groups_by_hand(rows, limit, groups):
    assert call_groups(rows, limit) == groups


# RNet and ONet for the whole cascade: A's crops pass with no offsets, B's fail RNet.
RNET = {A: [0, 3, 0, 0, 0, 0], B: [0, 0.5, 0, 0, 0, 0]}
ONET = {A: onet_row((0, 3)), B: onet_row((0, 3))}


def test_run_cascade_by_hand():
    faces = run_cascade(image(A), ScriptedBackend(PNET, RNET, ONET), PARAMS, trace=True)
    # RNet: the two boxes tie at p 0.953 and barely overlap (IoU 0.07): the later one is picked first;
    # no offsets: squared as they are. ONet: ties again (reversed), +1 on each side.
    np.testing.assert_array_equal(faces.trace["rnet_input_boxes"], [[44, 44, 44, 44], [18, 12, 46, 46]])
    np.testing.assert_array_equal(faces.onet_input_boxes, [[44, 44, 44, 44], [18, 12, 46, 46]])
    np.testing.assert_allclose(faces.boxes_pre_correction, [[44, 44, 45, 45], [18, 12, 47, 47]])
    assert faces.trace["n_after_cross_scale_nms07"] == 2 and len(faces.trace["pnet_scales"]) == 3
    assert len(run_cascade(image(B), ScriptedBackend(PNET, RNET, ONET), PARAMS)) == 0


@pytest.mark.parametrize("limits", [{"pnet": 1, "rnet": 1, "onet": 1}, {"pnet": 2, "rnet": 3, "onet": 2},
                                    {"pnet": 8, "rnet": 64, "onet": 64}])
def test_run_cascade_batch_equals_one_image_at_a_time(limits):
    images = [image(A), image(B), image(A), image(A)]
    batched = ScriptedBackend(PNET, RNET, ONET, limits)
    results = run_cascade_batch(images, batched, PARAMS, trace=True)
    for img, got in zip(images, results, strict=True):
        alone = run_cascade(img, ScriptedBackend(PNET, RNET, ONET), PARAMS, trace=True)
        np.testing.assert_array_equal(got.boxes, alone.boxes)
        np.testing.assert_array_equal(got.landmarks, alone.landmarks)
        assert got.trace == alone.trace
    sizes = {net: [n for k, n in batched.calls if k == net] for net in ("pnet", "rnet", "onet")}
    # every image has 2 RNet crops (B's then fail), each A 2 ONet crops: groups of at most the limit
    assert sizes["pnet"] == {1: [1] * 12, 2: [2, 2] * 3, 8: [4] * 3}[limits["pnet"]]
    assert sizes["rnet"] == {1: [2, 2, 2, 2], 3: [2, 2, 2, 2], 64: [8]}[limits["rnet"]]
    assert sizes["onet"] == {1: [2, 2, 2], 2: [2, 2, 2], 64: [6]}[limits["onet"]]


def test_run_cascade_batch_refuses_mixed_sizes_and_takes_no_images():
    backend = ScriptedBackend(PNET, RNET, ONET)
    with pytest.raises(ParameterError, match=r"run_cascade_batch needs images of one size, got \[\(40, 40, 3\)"):
        run_cascade_batch([np.zeros((40, 40, 3), np.uint8), image(A)], backend, PARAMS)
    assert run_cascade_batch([], backend) == []
    assert run_cascade(image(B), backend).trace is None  # default parameters; no trace unless asked


class StageLog(StageTimer):
    """A timer that records the order in which the stages are entered."""

    def __init__(self):
        super().__init__()
        self.entered: list[str] = []

    def __call__(self, stage):
        self.entered.append(stage)
        return super().__call__(stage)


def test_the_timer_sees_each_stage_in_pipeline_order():
    log = StageLog()
    run_cascade(image(A), ScriptedBackend(PNET, RNET, ONET), PARAMS, timer=log)
    # three levels: each one PNet call then its proposals; then the cross-scale NMS, RNet's crops and
    # call, RNet's NMS, ONet's crops and call (ONet's NMS is not timed)
    assert log.entered == ["pyramid", "pnet", "proposals_nms", "pnet", "proposals_nms", "pnet", "proposals_nms",
                           "proposals_nms", "crops", "rnet", "proposals_nms", "crops", "onet"]


def test_the_pool_reaches_the_pyramid_and_both_crop_stages(monkeypatch):
    import mtcnn_lab.cascade.stages as stages

    seen: list[tuple[str, object]] = []
    pyramid, crops = stages.pyramid_levels, stages.crop_boxes
    monkeypatch.setattr(stages, "pyramid_levels", lambda *a: seen.append(("pyramid", a[-1])) or pyramid(*a))
    monkeypatch.setattr(stages, "crop_boxes", lambda *a: seen.append(("crops", a[-1])) or crops(*a))
    with ThreadPoolExecutor(1) as pool:
        with_pool = run_cascade(image(A), ScriptedBackend(PNET, RNET, ONET), PARAMS, pool=pool)
    assert seen == [("pyramid", pool), ("crops", pool), ("crops", pool)]
    seen.clear()
    with ThreadPoolExecutor(1) as pool:
        stage_pnet(image(A), ScriptedBackend(PNET, RNET, ONET), PARAMS, pool=pool)
    assert seen == [("pyramid", pool)]
    seen.clear()
    alone = run_cascade(image(A), ScriptedBackend(PNET, RNET, ONET), PARAMS)
    assert seen == [("pyramid", None), ("crops", None), ("crops", None)]
    np.testing.assert_array_equal(with_pool.boxes, alone.boxes)


def test_images_without_crops_get_empty_float32_outputs_of_the_net_s_width():
    images = [image(A), image(B)]
    boxes = [np.array([[10, 10, 30, 30]]), np.zeros((0, 4), np.int64)]
    outputs = run_on_crops(images, boxes, lambda crops: np.ones((len(crops), 16), F32), 48, 16, 1, StageTimer(),
                           "onet")
    assert (outputs[1].shape, outputs[1].dtype) == ((0, 16), np.float32)
    faces = run_cascade_batch([image(B)], ScriptedBackend(PNET, RNET, ONET), PARAMS)[0]  # B: nothing reaches ONet
    assert faces.trace is None and faces.onet_outputs.shape == (0, 16) and faces.boxes.shape == (0, 4)


def test_a_score_equal_to_the_threshold_passes():
    # logits (0, 0): probability exactly 0.5, and thresholds of exactly 0.5
    params = CascadeParams(thresholds=(0.5, 0.5, 0.5))
    box = np.array([[20, 30, 39, 39]], np.int64)
    assert len(rnet_refine(box, np.array([[0, 0, 0, 0, 0, 0]], F32), params)) == 1
    assert len(onet_detections(box, np.array([onet_row((0, 0))], F32), params)) == 1
