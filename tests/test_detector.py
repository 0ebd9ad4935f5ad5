"""Tests of the public detector ``mtcnn_lab.MTCNN``: results, input conversion, bad input, parameters.

Everything here runs on the bundled MIT weights (``weights="zhang2016"``) and matplotlib's
``grace_hopper.jpg`` (one face), so no file from ``../shared`` is needed.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib import cbook

from mtcnn_lab import MTCNN, Detections
from mtcnn_lab.cascade.stages import run_cascade_batch
from mtcnn_lab.errors import BackendUnavailable, InputError, MtcnnLabError, ParameterError, WeightsError
from mtcnn_lab.weights.dat import write_dat
from mtcnn_lab.weights.models_cache import dat_path
from mtcnn_lab.weights.netspec import NET_NAMES

HOPPER = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


@pytest.fixture(scope="module")
def detector() -> MTCNN:
    return MTCNN(backend="numpy", weights="zhang2016")


@pytest.fixture(scope="module")
def hopper_result(detector, hopper) -> Detections:
    return detector.detect(hopper)


def assert_same(a: Detections, b: Detections) -> None:
    """Bit-identical detections."""
    assert len(a) == len(b)
    for name in ("boxes", "confidences", "landmarks", "boxes_pre_correction", "onet_input_boxes",
                 "onet_outputs"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def assert_empty(d: Detections) -> None:
    assert len(d) == 0
    assert d.boxes.shape == (0, 4) and d.confidences.shape == (0,) and d.landmarks.shape == (0, 5, 2)
    assert d.faces() == []
    assert d.single_face_index() is None


def one_line(err: BaseException) -> str:
    msg = str(err)
    assert msg.strip() and "\n" not in msg and "Traceback" not in msg, msg
    return msg


# --------------------------------------------------------------------------------------------
# results


def test_grace_hopper_has_one_confident_face_inside_the_image(hopper, hopper_result):
    d = hopper_result
    assert len(d) == 1
    assert d.boxes.dtype == np.float32 and d.boxes.shape == (1, 4)
    assert d.confidences.dtype == np.float32 and d.confidences.shape == (1,)
    assert d.landmarks.shape == (1, 5, 2)
    assert float(d.confidences[0]) > 0.99
    height, width = hopper.shape[:2]
    x, y, w, h = (float(v) for v in d.boxes[0])
    assert w > 60 and h > 60, "a face larger than the minimum face"
    assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
    # the landmarks lie in the face box (eyes above the mouth, left eye left of the right eye)
    lm = d.landmarks[0]
    assert np.all((lm[:, 0] >= x) & (lm[:, 0] <= x + w) & (lm[:, 1] >= y - 0.25 * h) & (lm[:, 1] <= y + h))
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
    assert max(lm[0, 1], lm[1, 1]) < min(lm[3, 1], lm[4, 1])
    assert d.single_face_index() == 0


def test_faces_are_json_ready(hopper_result):
    faces = hopper_result.faces()
    assert len(faces) == 1
    face = json.loads(json.dumps(faces))[0]
    assert {"bbox", "confidence", "landmarks"} <= face.keys()
    assert face["bbox"] == [float(v) for v in hopper_result.boxes[0]]
    assert len(face["landmarks"]) == 5 and all(len(p) == 2 for p in face["landmarks"])


def test_detect_is_deterministic_and_leaves_the_input_alone(detector, hopper, hopper_result):
    before = hopper.copy()
    assert_same(detector.detect(hopper), hopper_result)
    np.testing.assert_array_equal(hopper, before)


def test_detect_batch_equals_detect_per_image(detector, hopper, hopper_result):
    images = [hopper, cv2.resize(hopper, (256, 300)), np.ascontiguousarray(hopper[:, ::-1]),
              np.zeros((50, 80, 3), np.uint8)]
    batch = detector.detect_batch(iter(images))  # any iterable, e.g. a generator of frames
    assert isinstance(batch, list) and len(batch) == len(images)
    for image, result in zip(images, batch, strict=True):
        assert_same(result, detector.detect(image))
    assert_same(batch[0], hopper_result)
    assert len(batch[1]) == 1 and len(batch[2]) == 1 and len(batch[3]) == 0
    assert detector.detect_batch([]) == []


def test_gray_input_equals_gray2bgr(detector, hopper):
    # at full size the gray face fails RNet with these weights; at half size it is found
    gray = cv2.cvtColor(cv2.resize(hopper, (256, 300)), cv2.COLOR_BGR2GRAY)
    expected = detector.detect(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    assert len(expected) == 1
    assert_same(detector.detect(gray), expected)
    assert_same(detector.detect(gray[:, :, None]), expected)  # H x W x 1


def test_bgra_input_equals_bgr(detector, hopper, hopper_result):
    bgra = cv2.cvtColor(hopper, cv2.COLOR_BGR2BGRA)
    bgra[:, :, 3] = np.random.default_rng(0).integers(0, 256, hopper.shape[:2], dtype=np.uint8)
    assert_same(detector.detect(bgra), hopper_result)


def test_non_contiguous_view_equals_its_copy(detector, hopper):
    view = hopper[::2, ::2]
    assert not view.flags["C_CONTIGUOUS"]
    assert_same(detector.detect(view), detector.detect(np.ascontiguousarray(view)))


def test_weight_set_object_and_name_give_the_same_result(bundled_weights, hopper, hopper_result):
    det = MTCNN(backend="numpy", weights=bundled_weights)
    assert det.weights is bundled_weights
    assert_same(det.detect(hopper), hopper_result)


def test_openface_weights_from_a_models_root(tmp_path, hopper, hopper_result, bundled_weights):
    """OpenFace's .dat files are bit-identical to the bundled weights: same detections."""
    for net in NET_NAMES:
        path = dat_path(net, tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(write_dat(bundled_weights.nets()[net]))
    det = MTCNN(backend="numpy", weights="openface", models_root=tmp_path)
    assert det.weights.name == "openface"
    assert_same(det.detect(hopper), hopper_result)


def test_trace_records_the_stages(detector, hopper, hopper_result):
    d = detector.detect(hopper, trace=True)
    assert_same(d, hopper_result)
    assert d.trace is not None and d.trace["pnet_scales"]
    assert d.trace["onet_input_boxes"] and len(d.trace["onet_scores"]) == len(d.trace["onet_input_boxes"])
    assert hopper_result.trace is None


def test_repr_names_backend_weights_and_params(detector):
    text = repr(detector)
    assert "numpy" in text and "zhang2016" in text and "min_face=60" in text


# --------------------------------------------------------------------------------------------
# images smaller than the minimum face (OpenFace's C++ throws below about 42 px)


SMALL_SIZES = [(1, 1), (10, 10), (41, 300), (300, 41), (42, 42), (43, 43), (59, 59), (12, 12)]


@pytest.mark.parametrize("color", [False, True], ids=["gray", "colour"])
@pytest.mark.parametrize("size", SMALL_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_small_images_give_no_faces(detector, hopper, size, color):
    h, w = size
    image = cv2.resize(hopper, (w, h), interpolation=cv2.INTER_AREA)
    if not color:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if h == 1 and w == 1:
            image = image.reshape(1, 1)
    assert_empty(detector.detect(image))
    crop = hopper[200:200 + h, 180:180 + w]  # a piece of the face itself
    assert_empty(detector.detect(crop if color else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)))


@pytest.mark.parametrize("side", [1, 2, 11, 12, 13, 17, 24, 48])
def test_tiny_images_with_the_smallest_min_face(hopper, side):
    det = MTCNN(backend="numpy", weights="zhang2016", min_face=12)
    image = cv2.resize(hopper, (side, side), interpolation=cv2.INTER_AREA)
    d = det.detect(image)
    assert d.boxes.shape == (len(d), 4)
    assert_same(det.detect(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)),
                det.detect(cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)))


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 80), w=st.integers(1, 80), channels=st.sampled_from([0, 1, 3, 4]),
       seed=st.integers(0, 2**16))
def test_any_small_uint8_image_is_accepted(detector, h, w, channels, seed):
    shape = (h, w) if channels == 0 else (h, w, channels)
    image = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    d = detector.detect(image)
    assert d.boxes.shape == (len(d), 4) and d.landmarks.shape == (len(d), 5, 2)


# --------------------------------------------------------------------------------------------
# bad arrays -> InputError with a one-line message


BAD_ARRAYS = {
    "empty 0x0x3": (np.zeros((0, 0, 3), np.uint8), "empty"),
    "empty 0 rows": (np.zeros((0, 10, 3), np.uint8), "empty"),
    "empty 0 cols gray": (np.zeros((10, 0), np.uint8), "empty"),
    "empty 1-D": (np.zeros(0, np.uint8), "dimensions"),
    "float32": (np.zeros((50, 50, 3), np.float32), "uint8"),
    "float64 gray": (np.zeros((50, 50), np.float64), "uint8"),
    "uint16": (np.zeros((50, 50, 3), np.uint16), "uint8"),
    "int32": (np.zeros((50, 50, 3), np.int32), "uint8"),
    "int8": (np.zeros((50, 50, 3), np.int8), "uint8"),
    "bool": (np.zeros((50, 50, 3), bool), "uint8"),
    "1-D": (np.zeros(100, np.uint8), "dimensions"),
    "0-d array": (np.zeros((), np.uint8), "dimensions"),
    "numpy scalar": (np.uint8(7), "numpy.ndarray"),
    "4-D batch": (np.zeros((2, 50, 50, 3), np.uint8), "dimensions"),
    "2 channels": (np.zeros((50, 50, 2), np.uint8), "channels"),
    "5 channels": (np.zeros((50, 50, 5), np.uint8), "channels"),
    "channels first": (np.zeros((3, 50, 50), np.uint8), "channels first"),
    "list": ([[0, 1], [2, 3]], "numpy.ndarray"),
    "None": (None, "numpy.ndarray"),
    "path string": (str(HOPPER), "numpy.ndarray"),
}


@pytest.mark.parametrize("case", BAD_ARRAYS, ids=str)
def test_bad_arrays_raise_input_error(detector, case):
    image, needle = BAD_ARRAYS[case]
    with pytest.raises(InputError) as info:
        detector.detect(image)
    msg = one_line(info.value)
    assert needle in msg, msg
    assert isinstance(info.value, MtcnnLabError)


@pytest.mark.parametrize("backend", ["numpy", "openvino", "onnx", "torch", "torch-cascade"])
def test_images_of_one_size_batched_through_the_nets_give_the_faces_of_one_at_a_time(backend, hopper):
    """Whatever this CPU's kernels do with batches (each backend measured it when built), detect_batch and
    the batched cascade give each image the bits of detect, every stage's candidates included."""
    try:
        det = MTCNN(backend=backend, weights="zhang2016", threads=1)
    except BackendUnavailable as err:
        pytest.fail(f"{backend} (a backend of the dev extra) cannot be built here: {err}")
    images = [hopper, np.ascontiguousarray(hopper[:, ::-1]), np.roll(hopper, 40, axis=1), np.zeros_like(hopper)]
    singles = [det.detect(image, trace=True) for image in images]
    assert len(singles[0].trace["rnet_input_boxes"]) > 0 and len(singles[0]) == 1
    for batch in (2, 3, 4):
        for one, many in zip(singles, det.detect_batch(images, batch=batch), strict=True):
            assert_same(many, one)
    traced = run_cascade_batch(images, det.backend, det.params, trace=True)
    assert [t.trace for t in traced] == [s.trace for s in singles]


def test_batch_must_be_a_positive_integer_and_a_cascade_batch_one_size(detector, hopper):
    with pytest.raises(ParameterError, match="batch must be a positive integer"):
        detector.detect_batch([hopper], batch=0)
    with pytest.raises(ParameterError, match="images of one size"):
        run_cascade_batch([hopper, hopper[:100]], detector.backend, detector.params)


def test_bad_array_in_a_batch_raises(detector, hopper):
    with pytest.raises(InputError):
        detector.detect_batch([hopper, np.zeros((50, 50, 3), np.float32)])
    with pytest.raises(InputError, match=r"not an array of shape \(\d+, \d+, 3\); for one image use detect$"):
        detector.detect_batch(hopper)  # one image, not a batch: its rows are not images
    for wrong in (None, "hopper.jpg", 3):
        with pytest.raises(InputError, match=f"takes a sequence of images .*not {type(wrong).__name__}$"):
            detector.detect_batch(wrong)
    assert [len(d) for d in detector.detect_batch(np.stack([hopper, hopper]))] == [1, 1]  # (N, H, W, 3) is fine


@pytest.mark.parametrize("backend", [None, 3, object()])
def test_a_backend_that_is_neither_a_name_nor_a_backend_is_refused_in_one_line(backend):
    refused = "backend must be a name from `mtcnn-lab backends`.* or an object with every member of mtcnn_lab.backends"
    with pytest.raises(ParameterError, match=refused):
        MTCNN(backend=backend, weights="zhang2016")


def test_input_error_says_what_was_received_and_the_fix(detector):
    with pytest.raises(InputError) as info:
        detector.detect(np.zeros((40, 30, 3), np.float32))
    msg = one_line(info.value)
    assert "float32" in msg and "(40, 30, 3)" in msg and "astype(np.uint8)" in msg


# --------------------------------------------------------------------------------------------
# parameters and names


BAD_PARAMS = [
    {"min_face": 5},
    {"min_face": 11.9},
    {"min_face": 0},
    {"min_face": -60},
    {"min_face": float("nan")},
    {"factor": 1.2},
    {"factor": 1.0},
    {"factor": 0.0},
    {"factor": -0.5},
    {"factor": float("nan")},
    {"thresholds": (0.6, 0.7, 1.5)},
    {"thresholds": (-0.1, 0.7, 0.7)},
    {"thresholds": (0.6, 0.7)},
    {"thresholds": (0.6, 0.7, 0.7, 0.7)},
    {"thresholds": (0.6, float("nan"), 0.7)},
    {"nms_per_scale": 1.5},
    {"nms_onet": -0.1},
    {"correction": (0.0, 0.0, 1.0)},
]


@pytest.mark.parametrize("params", BAD_PARAMS, ids=repr)
def test_invalid_params_raise_parameter_error(params):
    with pytest.raises(ParameterError) as info:
        MTCNN(backend="numpy", weights="zhang2016", **params)
    msg = one_line(info.value)
    name = next(iter(params))
    assert name in msg, msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, MtcnnLabError)


@pytest.mark.parametrize("params", [{"min_face": 12}, {"min_face": 200.5}, {"factor": 0.5},
                                    {"thresholds": (0.0, 1.0, 0.5)}, {"thresholds": [0.5, 0.6, 0.7]}],
                         ids=repr)
def test_valid_params_are_accepted(params):
    det = MTCNN(backend="numpy", weights="zhang2016", **params)
    for key, value in params.items():
        assert np.atleast_1d(getattr(det.params, key)).tolist() == np.atleast_1d(value).tolist()


def test_defaults_are_openfaces(detector):
    assert detector.params.min_face == 60
    assert detector.params.factor == pytest.approx(0.709)
    assert tuple(detector.params.thresholds) == (0.6, 0.7, 0.7)


def test_params_change_the_result(hopper):
    strict = MTCNN(backend="numpy", weights="zhang2016", thresholds=(0.6, 0.7, 1.0))
    assert_empty(strict.detect(hopper))
    big = MTCNN(backend="numpy", weights="zhang2016", min_face=400)
    assert_empty(big.detect(hopper))


def test_unknown_backend_lists_the_valid_names():
    with pytest.raises(ParameterError) as info:
        MTCNN(backend="tensorflow", weights="zhang2016")
    msg = one_line(info.value)
    assert "'tensorflow'" in msg and "numpy" in msg and "auto" in msg


def test_unknown_weights_lists_the_valid_names():
    with pytest.raises(WeightsError) as info:
        MTCNN(backend="numpy", weights="vggface")
    msg = one_line(info.value)
    assert "'vggface'" in msg
    for name in ("openface", "zhang2016", "auto"):
        assert name in msg, msg


def test_missing_openface_weights_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(WeightsError) as info:
        MTCNN(backend="numpy", weights="openface", models_root=tmp_path)
    msg = one_line(info.value)
    assert str(dat_path("pnet", tmp_path)) in msg and "mtcnn-lab models --accept-license" in msg


def test_recipe_names_the_backend_auto_chose():
    detector = MTCNN(weights="zhang2016")  # backend="auto"
    recipe = detector.recipe(threads=1)
    assert recipe["backend"] != "auto" and recipe["threads"] == 1
    assert MTCNN(**recipe).backend.name == detector.backend.name


@pytest.mark.parametrize("threads", [0, -2, 1.5, True])
def test_threads_must_be_a_positive_integer(threads):
    with pytest.raises(ParameterError, match="threads must be a positive integer"):
        MTCNN(backend="numpy", weights="zhang2016", threads=threads)


def test_one_thread_means_no_resize_helper_and_more_threads_give_the_same_faces():
    image = cv2.imread(HOPPER)
    one = MTCNN(backend="numpy", weights="zhang2016", threads=1, thresholds=(0.3, 0.3, 0.7))
    two = MTCNN(backend="numpy", weights="zhang2016", threads=2, thresholds=(0.3, 0.3, 0.7))
    assert one.resize_pool is None and two.resize_pool is not None
    a, b = one.detect(image, trace=True), two.detect(image, trace=True)
    assert len(a.trace["rnet_input_boxes"]) >= 16 and len(a.boxes) >= 1  # enough crops to split; a face
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert a.trace == b.trace


def test_close_stops_the_resize_thread_closes_the_backend_it_built_and_refuses_to_detect(hopper):
    import threading

    with MTCNN(backend="openvino", weights="zhang2016", threads=2) as det:
        pool = det.resize_pool
        det.detect(hopper)
        assert any(t.name.startswith("mtcnn-resize") for t in threading.enumerate())
    assert det.resize_pool is None and pool._shutdown and det.backend.compiled == {}
    with pytest.raises(ParameterError, match="closed"):
        det.detect(hopper)
    with pytest.raises(ParameterError, match="closed"):
        det.detect_batch([hopper])
    det.close()  # twice is fine


def test_close_leaves_a_backend_given_as_an_object_to_its_owner(hopper, hopper_result):
    from mtcnn_lab.backends.select import make_backend

    backend = make_backend("openvino", MTCNN(backend="numpy", weights="zhang2016").weights)
    MTCNN(backend=backend, weights="zhang2016").close()
    assert backend.compiled  # still usable by its owner
    assert len(MTCNN(backend=backend, weights="zhang2016").detect(hopper)) == 1


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_positive_int_refuses_what_is_not_a_whole_number_from_1(value):
    from mtcnn_lab.checks import positive_int

    with pytest.raises(ParameterError, match=r"^workers must be a positive integer, not "):
        positive_int(value, "workers")
    assert positive_int(3, "workers") == 3 and positive_int(None, "threads", optional=True) is None
    with pytest.raises(ParameterError, match="or None"):
        positive_int(value, "threads", optional=True)


def test_the_package_imports_its_public_names_when_first_used():
    # the mtcnn-lab command starts (and a Ctrl-C at its start is caught by it) before the runtimes load
    import subprocess
    import sys

    code = ("import sys, mtcnn_lab.errors; heavy = [m for m in ('mtcnn_lab.detector', 'numba', 'openvino') "
            "if m in sys.modules]; import mtcnn_lab; assert set(mtcnn_lab.__all__) <= set(dir(mtcnn_lab)); "
            "from mtcnn_lab import MTCNN, detect_video; print(heavy, MTCNN.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] mtcnn_lab.detector"
