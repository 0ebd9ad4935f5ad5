"""The compiled resize + normalisation against OpenFace's own network inputs (C++ dumps), bit for bit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtcnn_lab.cascade.crops import SPLIT_MIN, crop_boxes
from mtcnn_lab.cascade.pyramid import pyramid_levels
from mtcnn_lab.cascade.resize import resized_input
from mtcnn_lab.errors import InputError
from mtcnn_lab.io.images import read_image
from mtcnn_lab.params import level_size

from .conftest import require_shared

IMAGES = {"sample1": "sample1.jpg", "sample2": "sample2.jpg", "multi_face_f140": "frames/multi_face_f140.png"}


@pytest.fixture(scope="module", params=["one thread", "two threads"])
def pool(request):
    """None, or a helper thread that the pyramid and the crops split their work with."""
    if request.param == "one thread":
        yield None
        return
    with ThreadPoolExecutor(1) as executor:
        yield executor


@pytest.mark.parametrize("name", IMAGES)
def test_pyramid_levels_are_the_cpp_network_inputs(name, pool):
    image = read_image(require_shared("samples", IMAGES[name]))
    dump = np.load(require_shared("reference", "layers", f"{name}_pnet.npz"))
    levels = pyramid_levels(image, pool=pool)
    dumped = sorted({int(key[1:key.index("_")]) for key in dump.files if key.startswith("s") and key.endswith("_in")})
    assert dumped, "no pyramid level in the dump"
    for level in dumped:
        np.testing.assert_array_equal(levels[level][1], dump[f"s{level}_in"], err_msg=f"{name} level {level}")


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize(("net", "size"), [("rnet", 24), ("onet", 48)])
def test_crops_are_the_cpp_network_inputs(name, net, size):
    image = read_image(require_shared("samples", IMAGES[name]))
    dump = np.load(require_shared("reference", "layers", f"{name}_{net}.npz"))
    np.testing.assert_array_equal(crop_boxes(image, dump["box_xywh"], size), dump["in"])


@pytest.mark.parametrize("n", [SPLIT_MIN - 1, SPLIT_MIN, 41])
def test_crops_split_over_two_threads_are_the_crops_of_one(n, pool):
    rng = np.random.default_rng(n)
    image = rng.integers(0, 256, (90, 120, 3), np.uint8)
    sides = rng.integers(1, 80, n)
    boxes = np.stack([rng.integers(-30, 110, n), rng.integers(-30, 80, n), sides, sides], axis=1)
    crops = crop_boxes(image, boxes, 24, pool)
    for box, crop in zip(boxes, crops, strict=True):  # each checked against the slow buffer-then-resize
        np.testing.assert_array_equal(crop, resized_input(padded_buffer(image, box), (24, 24)))


def padded_buffer(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """OpenFace's crop buffer built the slow way: (s+1)^2 zeros, the part inside the image copied in."""
    x, y, s = (int(v) for v in box[:3])
    buffer = np.zeros((s + 1, s + 1, 3), np.float32)
    for row in range(s + 1):
        for col in range(s + 1):
            iy, ix = y - 1 + row, x - 1 + col
            if 0 <= iy < image.shape[0] and 0 <= ix < image.shape[1]:
                buffer[row, col] = image[iy, ix]
    return buffer


@settings(max_examples=60, deadline=None)
@given(st.integers(-40, 70), st.integers(-40, 50), st.integers(1, 90), st.sampled_from([24, 48]),
       st.integers(0, 2**16))
def test_crops_outside_the_image_read_zeros(x, y, s, size, seed):
    image = np.random.default_rng(seed).integers(0, 256, (50, 70, 3), np.uint8)
    box = np.array([[x, y, s, s]])
    expected = resized_input(padded_buffer(image, box[0]), (size, size))
    np.testing.assert_array_equal(crop_boxes(image, box, size)[0], expected)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 120), st.integers(1, 120), st.integers(1, 120), st.integers(1, 120), st.integers(0, 2**16))
def test_resize_geometry_is_opencvs(h, w, out_h, out_w, seed):
    """Same sampling as cv2.resize INTER_LINEAR, up or down; only the last bits of rounding differ
    (opencv-python's wheels use Intel IPP, OpenFace's OpenCV the generic code)."""
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)
    ours = resized_input(image, (out_h, out_w))
    theirs = cv2.resize(image.astype(np.float32), (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    theirs = ((theirs.reshape(out_h, out_w, 3) - np.float32(127.5)) * np.float32(0.0078125))[..., ::-1]
    np.testing.assert_allclose(ours, np.moveaxis(theirs, -1, 0), rtol=0, atol=2e-5)


def test_uint8_and_float_images_give_the_same_inputs():
    image = np.random.default_rng(0).integers(0, 256, (97, 131, 3), np.uint8)
    boxes = np.array([[-5, 3, 40, 40], [10, 20, 30, 30]])
    np.testing.assert_array_equal(crop_boxes(image, boxes, 24), crop_boxes(image.astype(np.float32), boxes, 24))
    size = level_size(97, 131, 0.2)
    np.testing.assert_array_equal(resized_input(image, size), resized_input(image.astype(np.float32), size))


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8),
                                 np.zeros((10, 10, 3), np.int32)])
def test_bad_images_are_refused_in_one_line(bad):
    with pytest.raises(InputError, match="BGR"):
        resized_input(bad, (5, 5))
