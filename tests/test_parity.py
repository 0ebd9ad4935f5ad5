"""End-to-end parity with C++ OpenFace on the 50 dev inputs of ``shared/reference``.

For every FP32 backend (numpy reference, torch CPU, ONNX Runtime CPU, OpenVINO CPU, and the whole cascade in
torch on the CPU): same number of faces, bbox and bbox_pre_correction and landmarks within 1e-3 px,
confidences within 1e-6 (the README's claims); and every intermediate stage equal. ``detect_batch`` gives the
50 inputs the bits of ``detect``, and the 50 inputs, each size group put into a lossless video, match C++
through ``detect_video`` on two workers.
"""

from __future__ import annotations

import json
from collections import defaultdict

import cv2
import numpy as np
import pytest

from mtcnn_lab import MTCNN
from mtcnn_lab.io.images import read_image
from mtcnn_lab.lab.parity import load_cpp_reference, parity_row
from mtcnn_lab.video.stream import detect_video, stream_frames

from .conftest import REFERENCE, SAMPLES, require_shared

PX, CONF = 1e-3, 1e-6  # the README claims 1.4e-4 px and 3e-7; a +0.008 px landmark shift must fail
STAGE_SCORE = 5e-6  # every RNet/ONet candidate's probability, rejected ones too (measured <= 1.8e-6 on Zen 5)


def dev_entries() -> list[dict]:
    path = REFERENCE / "cpp_mtcnn_dev.json"
    return load_cpp_reference(path) if path.exists() else []


def stage_entries() -> dict[str, dict]:
    path = REFERENCE / "cpp_mtcnn_dev_stages.json"
    return {e["image"]: e for e in json.loads(path.read_text())} if path.exists() else {}


@pytest.fixture(scope="module", params=["numpy", "torch", "onnx", "openvino", "torch-cascade"])
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
    assert trace["onet_scores"] == pytest.approx(stages["onet_scores"], abs=STAGE_SCORE)
    # Every RNet candidate, in pick order (the resize is OpenFace's own, bit for bit: tests/test_resize.py).
    assert trace["rnet_input_boxes"] == stages["rnet_input_boxes"]
    assert trace["rnet_scores"] == pytest.approx(stages["rnet_scores"], abs=STAGE_SCORE)


def test_detect_batch_gives_the_dev_inputs_the_bits_of_detect(detector):
    require_shared("reference", "cpp_mtcnn_dev.json")
    images = sorted((read_image(SAMPLES / e["image"]) for e in dev_entries()), key=lambda i: i.shape)
    singles = [detector.detect(image) for image in images]
    batched = detector.detect_batch(images)  # same-size frames of a video go through the nets together
    assert [b.faces() for b in batched] == [s.faces() for s in singles]
    assert all(np.array_equal(b.onet_outputs, s.onet_outputs) for b, s in zip(batched, singles, strict=True))


def size_groups() -> dict[str, list[dict]]:
    """The dev inputs by frame size (``WIDTHxHEIGHT``), each group in name order: the video frames cut from
    one sample video, the image sequence, the stills of one size."""
    groups = defaultdict(list)
    for entry in sorted(dev_entries(), key=lambda e: e["image"]):
        groups[f"{entry['width']}x{entry['height']}"].append(entry)
    return dict(groups)


def assert_faces_match_cpp(faces: list[dict], cpp: dict) -> None:
    assert len(faces) == len(cpp["faces"]), f"{cpp['image']}: {len(faces)} faces, C++ {len(cpp['faces'])}"
    for ours, theirs in zip(faces, cpp["faces"], strict=True):
        for field, tolerance in (("bbox", PX), ("bbox_pre_correction", PX), ("landmarks", PX), ("confidence", CONF)):
            diff = np.abs(np.asarray(ours[field], np.float64) - np.asarray(theirs[field], np.float64)).max()
            assert diff <= tolerance, (cpp["image"], field, diff)
        assert ours["onet_input_box"] == theirs["onet_input_box"], cpp["image"]


@pytest.mark.parametrize("size", sorted(size_groups()))
def test_dev_inputs_of_one_size_as_a_video_through_detect_video_on_two_workers_match_cpp(size, detector, tmp_path):
    """Every dev input, each size group put into a lossless video, through detect_video on two workers."""
    frames = size_groups()[size]
    images = [read_image(SAMPLES / e["image"]) for e in frames]
    path = tmp_path / f"{size}.avi"  # PNG-coded frames: decoding gives the dev inputs' pixels back
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"png "), 10, images[0].shape[1::-1])
    for image in images:
        writer.write(image)
    writer.release()
    assert all(np.array_equal(frame, image) for (_, frame), image in zip(stream_frames(path), images, strict=True))
    entries = list(detect_video(detector, path, progress=False, workers=2))
    assert [e["frame"] for e in entries] == list(range(len(frames)))
    for entry, cpp in zip(entries, frames, strict=True):
        assert_faces_match_cpp(entry["faces"], cpp)
