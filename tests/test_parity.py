"""End-to-end parity with C++ OpenFace on the 50 dev inputs of ``shared/reference``.

For every FP32 backend (numpy reference, torch CPU, ONNX Runtime CPU, OpenVINO CPU): same number of faces, bbox and
bbox_pre_correction within 0.01 px, confidences within 1e-4, landmarks within 0.01 px; and every
intermediate stage equal.
"""

from __future__ import annotations

import json

import pytest

from mtcnn_lab import MTCNN
from mtcnn_lab.compare import load_cpp_reference, parity_row
from mtcnn_lab.frames import read_image

from .conftest import REFERENCE, SAMPLES, require_shared

PX, CONF = 0.01, 1e-4


def dev_entries() -> list[dict]:
    path = REFERENCE / "cpp_mtcnn_dev.json"
    return load_cpp_reference(path) if path.exists() else []


def stage_entries() -> dict[str, dict]:
    path = REFERENCE / "cpp_mtcnn_dev_stages.json"
    return {e["image"]: e for e in json.loads(path.read_text())} if path.exists() else {}


@pytest.fixture(scope="module", params=["numpy", "torch", "onnx", "openvino"])
def detector(request, openface_weights):
    """Every FP32 backend available here runs the same cascade."""
    return MTCNN(backend=request.param, weights=openface_weights)


def test_reference_has_50_inputs():
    require_shared("reference", "cpp_mtcnn_dev.json")
    assert len(dev_entries()) == 50


@pytest.mark.parametrize("cpp", dev_entries(), ids=lambda e: e["image"])
def test_detections_match_cpp(cpp, detector):
    detections = detector.detect(read_image(SAMPLES / cpp["image"]), trace=True)
    row = parity_row(detections, cpp)
    assert row.same_count, f"{cpp['image']}: {row.faces} faces, C++ {row.cpp_faces}"
    assert row.bbox <= PX and row.bbox_pre_correction <= PX and row.landmarks <= PX, row
    assert row.confidence <= CONF, row
    assert [list(b) for b in detections.onet_input_boxes] == [f["onet_input_box"] for f in cpp["faces"]]
    if cpp["faces"]:
        assert detections.single_face_index() == cpp["single_face_index"]

    stages = stage_entries()[cpp["image"]]
    trace = detections.trace
    for ours, theirs in zip(trace["pnet_scales"], stages["pnet_scales"], strict=True):
        assert ours["scale"] == pytest.approx(theirs["scale"], abs=1e-4)
        for key in ("pyr_wh", "heatmap_wh", "n_above_t1", "n_after_nms05"):
            assert ours[key] == theirs[key], (key, ours, theirs)
    for key in ("n_after_cross_scale_nms07", "n_rnet_pass", "n_after_rnet_nms07", "onet_input_boxes"):
        assert trace[key] == stages[key], key
    assert trace["onet_scores"] == pytest.approx(stages["onet_scores"], abs=CONF)
    # Every RNet candidate, in pick order (the resize is OpenFace's own, bit for bit: tests/test_resize.py).
    assert trace["rnet_input_boxes"] == stages["rnet_input_boxes"]
    assert trace["rnet_scores"] == pytest.approx(stages["rnet_scores"], abs=CONF)
