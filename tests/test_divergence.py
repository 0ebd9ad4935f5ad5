"""The PNet layer-0 divergence investigation (``mtcnn_lab.lab.divergence``).

The reported divergence (max |diff| 8.86, mean 0.153, channel-1 correlation -0.72 on a 384x216
level, RNet/ONet matching to 1e-6) is reproduced by feeding B,G,R instead of R,G,B; every other
mistake has a different signature. Data-dependent tests skip without ``../shared``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtcnn_lab.lab.divergence.cases import (
    DUMPED_IMAGES,
    dumped_cases,
    flatten_orders_differ,
    hd_frame,
    net_output_divergence,
)
from mtcnn_lab.lab.divergence.mistakes import INVESTIGATED, MISTAKES, available, get_mistake, layer0, network_input
from mtcnn_lab.lab.divergence.signatures import (
    colour_opponency,
    divergence_signature,
    format_table,
    investigate,
    reproduces_report,
    swap_parts,
)

from .conftest import SHARED, require_shared

SINGLE = [n for n in INVESTIGATED if "+" not in n and available(MISTAKES[n])]
# mistakes that leave a 1920x1080 -> 384x216 layer 0 (exact 5:1 ratio) unchanged or nearly so
NO_EFFECT_AT_5_TO_1 = {"fc_flatten_order", "resize_cubic"}  # cubic samples pixel 5i+2 exactly, like linear
SUBTLE = {"normalise_127_5"}  # a 0.4 % scale error: max |diff| ~0.05


@pytest.fixture(scope="module")
def weights(bundled_weights):
    """The bundled weights (bit-identical to OpenFace's .dat files)."""
    return bundled_weights


@pytest.fixture(scope="module")
def cases():
    """Every C++-dumped PNet level (first and last scale of the three dumped images)."""
    require_shared("reference", "layers")
    require_shared("samples")
    return list(dumped_cases(SHARED))


@pytest.fixture(scope="module")
def hd_frames():
    """1920x1080 frames made from the dumped images (scale 0.2 gives the reported 384x216 level)."""
    from mtcnn_lab.io.images import read_image

    return {name: hd_frame(read_image(require_shared(*rel.split("/")))) for name, rel in DUMPED_IMAGES.items()}


@pytest.fixture(scope="module")
def hd_rows(hd_frames, weights):
    """investigate() on the video frame (multi_face_f140) and sample2 stretched to 1080p."""
    return {name: {r["name"]: r for r in investigate(hd_frames[name], 0.2, weights)}
            for name in ("multi_face_f140", "sample2")}


def _synthetic(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random BGR uint8 image."""
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 1.5)


# --------------------------------------------------------------------------------------------
# without shared data


def test_mistake_names_and_combinations():
    assert get_mistake(None) is None and get_mistake("none") is None
    combo = get_mistake("bgr_input+resize_nearest")
    assert combo.stages == ("resize", "layout")
    with pytest.raises(ValueError, match="layout"):
        get_mistake("bgr_input+hwc_as_chw")
    with pytest.raises(KeyError):
        get_mistake("no_such_mistake")
    assert MISTAKES["fc_flatten_order"].stages == ("fc_flatten",)
    assert MISTAKES["bgr_input"].input_side and not MISTAKES["kernel_transposed"].input_side


@pytest.mark.parametrize("name", SINGLE)
def test_every_mistake_keeps_the_layer0_shape(weights, name):
    image = _synthetic(100, 160)
    assert layer0(image, 0.2, weights, name).shape == layer0(image, 0.2, weights).shape == (10, 18, 30)


def test_square_only_reshape_bugs(weights):
    """dsize_swapped is invisible on square levels (RNet/ONet crops); row_major_reshape there is a transpose."""
    square = _synthetic(120, 120, 1)
    truth = layer0(square, 0.2, weights)
    np.testing.assert_array_equal(layer0(square, 0.2, weights, "dsize_swapped"), truth)
    x = network_input(square, 0.2)
    np.testing.assert_array_equal(network_input(square, 0.2, "row_major_reshape"), x.transpose(0, 2, 1))
    wide = _synthetic(100, 160, 1)
    assert divergence_signature(layer0(wide, 0.2, weights, "dsize_swapped"), layer0(wide, 0.2, weights))[
        "mean_abs"] > 0.3


def test_fc_flatten_cannot_touch_layer0(weights):
    image = _synthetic(100, 160, 2)
    np.testing.assert_array_equal(layer0(image, 0.2, weights, "fc_flatten_order"), layer0(image, 0.2, weights))
    rng = np.random.default_rng(0)
    assert flatten_orders_differ(rng.standard_normal((2, 64, 3, 3)))  # RNet's first FC input
    assert flatten_orders_differ(rng.standard_normal((2, 128, 3, 3)))  # ONet's


def test_signature_definitions():
    rng = np.random.default_rng(3)
    truth = rng.standard_normal((3, 20, 30))
    ours = truth.copy()
    ours[1] *= -1
    sig = divergence_signature(ours, truth)
    assert sig["corr"][0] == pytest.approx(1.0) and sig["corr"][1] == pytest.approx(-1.0)
    assert sig["corr_diff"][1] == pytest.approx(-1.0) and math.isnan(sig["corr_diff"][0])
    assert sig["max_abs"] == pytest.approx(2 * np.abs(truth[1]).max())
    with pytest.raises(ValueError, match="shapes differ"):
        divergence_signature(ours[:, 1:], truth)


def test_channel_1_is_the_red_minus_blue_channel(weights):
    """Channel 1's R and B kernels have opposite sums, by far the largest red-minus-blue weight."""
    rows = colour_opponency(weights)
    opp = [abs(r["r_minus_b"]) for r in rows]
    assert int(np.argmax(opp)) == 1 and opp[1] > 2 * sorted(opp)[-2]
    assert rows[1]["sum_r"] < -2 and rows[1]["sum_b"] > 1


# --------------------------------------------------------------------------------------------
# against the C++ dumps


def test_correct_pipeline_reproduces_cpp_layer0(cases, weights):
    limits = {("sample1", 0): 1e-4, ("multi_face_f140", 0): 1e-4}
    assert len(cases) == 6
    for case in cases:
        ours = layer0(case.image, case.scale, weights)
        assert ours.shape == case.truth.shape
        err = float(np.abs(ours - case.truth).max())
        assert err <= limits.get((case.image_name, case.scale_index), 2e-3), (case.image_name, case.scale_index, err)
        if (case.image_name, case.scale_index) in limits:  # integer ratio: bit-identical resize
            np.testing.assert_array_equal(network_input(case.image, case.scale), case.cpp_input)


def test_every_mistake_diverges_from_cpp(cases, weights):
    """On the C++ dumps of scale 0 each mistake is far beyond the correct pipeline's <= 1e-3."""
    for case in (c for c in cases if c.scale_index == 0):
        for name in SINGLE:
            err = float(np.abs(layer0(case.image, case.scale, weights, name) - case.truth).max())
            if name == "fc_flatten_order":
                assert err < 2e-3
            elif name == "resize_cubic" and case.image_name != "sample2":
                assert err < 1e-4  # 640 -> 128 is exactly 5:1: cubic samples the same pixels as linear
            else:
                assert err > (0.02 if name in SUBTLE else 1.0), (case.image_name, name, err)


def test_bgr_input_matches_report_on_cpp_dumps(cases, weights):
    """Against the C++ values themselves (no reference in between), scale 0 of sample2 and the video frame."""
    for case in (c for c in cases if c.scale_index == 0 and c.image_name != "sample1"):
        sig = divergence_signature(layer0(case.image, case.scale, weights, "bgr_input"), case.truth)
        assert reproduces_report(sig), (case.image_name, sig)
        assert -0.85 <= sig["corr"][1] <= -0.6


# --------------------------------------------------------------------------------------------
# the reported 1920x1080 -> 384x216 case


def test_hd_level_is_384x216(hd_frames, weights):
    frame = hd_frames["multi_face_f140"]
    assert frame.shape == (1080, 1920, 3)
    assert network_input(frame, 0.2).shape == (3, 216, 384)
    assert layer0(frame, 0.2, weights).shape == (10, 214, 382)


def test_bgr_input_reproduces_the_reported_signature(hd_rows):
    for name, rows in hd_rows.items():
        row = rows["bgr_input"]
        assert row["matches_report"], name
        assert 4.0 <= row["max_abs"] <= 15.0  # reported 8.86
        assert 0.10 <= row["mean_abs"] <= 0.25  # reported 0.153
        assert -0.85 <= row["corr"][1] <= -0.6  # reported -0.72
        others = [c for i, c in enumerate(row["corr"]) if i != 1]
        assert min(others) >= 0.85  # only channel 1 (0-based) is inverted


def test_correlation_of_outputs_is_the_reported_definition(hd_rows):
    """corr(ours_c, truth_c) gives ~-0.72 on channel 1; the difference's correlation gives ~-0.94."""
    for rows in hd_rows.values():
        row = rows["bgr_input"]
        assert abs(row["corr"][1] - (-0.72)) < 0.1
        assert row["corr_diff"][1] < -0.88
        assert row["corr"][0] > 0.9  # "channel 1" read 1-based (index 0) is not inverted


def test_no_other_single_mistake_reproduces_the_report(hd_rows):
    for name, rows in hd_rows.items():
        for mistake in SINGLE:
            if mistake != "bgr_input":
                assert not rows[mistake]["matches_report"], (name, mistake)
            if mistake not in NO_EFFECT_AT_5_TO_1:
                assert rows[mistake]["max_abs"] > (0.02 if mistake in SUBTLE else 1.0), (name, mistake)


def test_mistake_signatures_are_distinct(hd_rows):
    """Apart from PIL vs torch antialias (the same filter), no two effective mistakes share a signature."""
    rows = hd_rows["multi_face_f140"]
    names = [n for n in SINGLE if n not in NO_EFFECT_AT_5_TO_1 and n != "resize_torch_antialias"]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ra, rb = rows[a], rows[b]
            close_mean = abs(ra["mean_abs"] - rb["mean_abs"]) <= 0.05 * max(ra["mean_abs"], rb["mean_abs"])
            close_corr = np.nanmax(np.abs(np.subtract(ra["corr"], rb["corr"]))) < 0.05
            assert not (close_mean and close_corr), (a, b)
    if "resize_pil" in rows and "resize_torch_antialias" in rows:
        assert rows["resize_pil"]["max_abs"] == pytest.approx(rows["resize_torch_antialias"]["max_abs"], abs=1e-4)


def test_swap_decomposition_explains_channel_1(hd_frames, weights):
    """layer0 = A + C and the B,G,R-fed layer0 = A - C; only channel 1 has std(C) > std(A)."""
    frame = hd_frames["multi_face_f140"]
    a, c = swap_parts(network_input(frame, 0.2), weights)
    np.testing.assert_allclose(a + c, layer0(frame, 0.2, weights), atol=1e-4)
    np.testing.assert_allclose(a - c, layer0(frame, 0.2, weights, "bgr_input"), atol=1e-4)
    ratio = c.std(axis=(1, 2)) / a.std(axis=(1, 2))
    assert ratio[1] > 1.5 and np.all(np.delete(ratio, 1) < 0.5)


def test_format_table(hd_rows):
    text = format_table(list(hd_rows["multi_face_f140"].values()))
    assert "bgr_input" in text and text.count("\n") == len(hd_rows["multi_face_f140"])


# --------------------------------------------------------------------------------------------
# RNet / ONet: why they still matched


@pytest.fixture(scope="module")
def sample1_image():
    from mtcnn_lab.io.images import read_image

    return read_image(require_shared("samples", "sample1.jpg"))


@pytest.mark.parametrize("net", ["rnet", "onet"])
def test_rnet_onet_under_each_mistake(sample1_image, weights, net):
    """Network mistakes break RNet/ONet even fed the C++ ``in``; bgr_input only via the port's own crops;
    dsize_swapped never (square crops)."""
    dump = require_shared("reference", "layers", f"sample1_{net}.npz")

    def run(name):
        return net_output_divergence(sample1_image, weights, dump, name)

    correct = run(None)
    assert correct["from_cpp_in"] < 1e-5 and correct["from_image"] < 1e-5
    for name in ("kernel_transposed", "kernel_flipped", "fc_flatten_order"):
        assert run(name)["from_cpp_in"] > 1.0, name
    bgr = run("bgr_input")
    assert bgr["from_cpp_in"] < 1e-5 and bgr["from_image"] > 0.3
    swapped = run("dsize_swapped")
    assert swapped["from_cpp_in"] < 1e-5 and swapped["from_image"] < 1e-5
