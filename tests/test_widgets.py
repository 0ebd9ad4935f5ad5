"""The notebook frame viewer: pure rendering/readout and the widget callbacks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from mtcnn_lab.cascade.boxes import iou  # noqa: E402
from mtcnn_lab.detections import Detections  # noqa: E402
from mtcnn_lab.lab.figures import to_bgr  # noqa: E402
from mtcnn_lab.lab.widgets import FrameViewer  # noqa: E402


def make_detections(boxes: list[list[float]], confidences: list[float] | None = None) -> Detections:
    """Detections with the given boxes and landmarks at fixed spots inside each box."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(b)
    rel = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])
    landmarks = b[:, None, :2].astype(np.float64) + rel[None] * b[:, None, 2:].astype(np.float64)
    conf = np.asarray(confidences if confidences is not None else [0.99] * n, np.float32)
    return Detections(b, conf, landmarks, b.copy(), np.zeros((n, 4), np.int64), np.zeros((n, 16), np.float32))


def cpp_faces(boxes: list[list[float]]) -> list[dict]:
    det = make_detections(boxes, [0.9] * len(boxes))
    return [{"bbox": f["bbox"], "confidence": f["confidence"], "landmarks": f["landmarks"]} for f in det.faces()]


FRAME_BOXES = [
    [[20, 20, 40, 40]],
    [[10, 30, 30, 30], [100, 40, 36, 36]],
    [],
]
CPP_BOXES = [
    [[22, 21, 40, 38]],
    [[101, 41, 35, 36], [10, 30, 30, 30]],  # other order than Python's
    [[50, 50, 20, 20]],
]


@pytest.fixture()
def viewer() -> FrameViewer:
    rng = np.random.default_rng(0)
    frames = [(f"frame_{i}.png", rng.integers(0, 60, (120, 160, 3), dtype=np.uint8)) for i in range(3)]
    results = {
        "numpy": [make_detections(b) for b in FRAME_BOXES],
        "torch-cpu": [make_detections([[x + 5, y, w, h] for x, y, w, h in b]) for b in FRAME_BOXES],
    }
    return FrameViewer(frames, results, cpp=[cpp_faces(b) for b in CPP_BOXES])


def test_slider_changes_image_and_readout(viewer):
    assert viewer.widget.children  # the VBox
    first_image, first_text = bytes(viewer.image.value), viewer.info.value
    assert first_image.startswith(b"\x89PNG") and "frame_0.png" in first_text
    viewer.slider.value = 1
    assert bytes(viewer.image.value) != first_image
    assert "frame_1.png" in viewer.info.value and viewer.info.value != first_text
    shown = cv2.imdecode(np.frombuffer(viewer.image.value, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(shown, viewer.render(1, "numpy"))


def test_toggles_change_the_rendered_image(viewer):
    both = viewer.render(0, "numpy", True, True)
    only_cpp = viewer.render(0, "numpy", True, False)
    only_python = viewer.render(0, "numpy", False, True)
    nothing = viewer.render(0, "numpy", False, False)
    np.testing.assert_array_equal(nothing, viewer.frames[0][1])
    assert len({a.tobytes() for a in (both, only_cpp, only_python, nothing)}) == 4
    # colours: C++ pixels in the cpp colour, Python pixels in the python colour
    assert (only_cpp == to_bgr("cpp")).all(axis=2).any()
    assert (only_python == to_bgr("python")).all(axis=2).any()
    assert not (only_python == to_bgr("cpp")).all(axis=2).any()

    before = bytes(viewer.image.value)
    viewer.show_cpp.value = False
    assert bytes(viewer.image.value) != before
    viewer.show_python.value = False
    shown = cv2.imdecode(np.frombuffer(viewer.image.value, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(shown, nothing)


def test_iou_readout_matches_boxes_iou(viewer):
    expected = float(iou(np.float32([[20, 20, 40, 40]]), np.float32([[22, 21, 40, 38]]))[0, 0])
    stats = viewer.stats(0, "numpy")
    assert stats["pairs"] == [(0, 0, pytest.approx(expected, abs=1e-12))]
    assert stats["mean_iou"] == pytest.approx(expected, abs=1e-12)
    text = viewer.readout(0, "numpy")
    assert f"IoU {expected:.6f}" in text and f"mean IoU {expected:.6f}" in text
    assert "1 faces | C++: 1 faces" in text

    # frame 1: faces matched across different orders, both IoUs and their mean
    stats = viewer.stats(1, "numpy")
    ious = iou(np.float32(FRAME_BOXES[1]), np.float32(CPP_BOXES[1]))
    assert [(i, j) for i, j, _ in stats["pairs"]] == [(0, 1), (1, 0)]
    assert stats["pairs"][0][2] == pytest.approx(ious[0, 1]) and stats["pairs"][1][2] == pytest.approx(ious[1, 0])
    assert stats["mean_iou"] == pytest.approx((ious[0, 1] + ious[1, 0]) / 2)
    assert f"mean IoU {stats['mean_iou']:.6f}" in viewer.readout(1, "numpy")

    # frame 2: Python found nothing, the C++ face is unmatched
    stats = viewer.stats(2, "numpy")
    assert stats["pairs"] == [] and stats["mean_iou"] is None and stats["unmatched_cpp"] == [0]
    assert "mean IoU n/a" in viewer.readout(2, "numpy")


def test_backend_dropdown_switches_results(viewer):
    assert list(viewer.backend_dropdown.options) == ["numpy", "torch-cpu"]
    before_image, before_text = bytes(viewer.image.value), viewer.info.value
    viewer.backend_dropdown.value = "torch-cpu"
    assert bytes(viewer.image.value) != before_image
    assert "torch-cpu" in viewer.info.value and viewer.info.value != before_text
    shifted = float(iou(np.float32([[25, 20, 40, 40]]), np.float32([[22, 21, 40, 38]]))[0, 0])
    assert f"IoU {shifted:.6f}" in viewer.readout(0, "torch-cpu")
    with pytest.raises(KeyError):
        viewer.readout(0, "nope")


def test_big_frames_are_downscaled_with_their_boxes():
    frame = np.zeros((1000, 2000, 3), np.uint8)
    det = make_detections([[400, 300, 600, 400]])
    big = FrameViewer([("big", frame)], {"numpy": [det]}, cpp=None, max_width=500)
    image, scale = big.display_frame(0)
    assert image.shape == (250, 500, 3) and scale == 0.25
    drawn = big.render(0, show_cpp=False)
    assert drawn.shape == (250, 500, 3)
    mask = (drawn != 0).any(axis=2)
    ys, xs = np.nonzero(mask)
    # the box x 400..999, y 300..699 becomes 100..249.75, 75..174.75 (plus line width and landmarks inside)
    assert abs(xs.min() - 100) <= 2 and abs(xs.max() - 250) <= 2
    assert abs(ys.min() - 75) <= 2 and abs(ys.max() - 175) <= 2
    assert "shown at 0.25x" in big.readout(0)
    assert "C++: no reference" in big.readout(0)
    assert big.show_cpp.disabled
    small = FrameViewer([("small", frame[:100, :200])], {"numpy": [Detections.empty()]})
    assert small.display_frame(0)[1] == 1.0 and small.render(0).shape == (100, 200, 3)


def test_dom_classes_and_validation(viewer):
    assert "mtcnn-viewer-slider" in viewer.slider._dom_classes
    assert "mtcnn-viewer-image" in viewer.image._dom_classes
    assert "mtcnn-viewer" in viewer.widget._dom_classes
    assert viewer.slider.max == 2
    frames = [("a", np.zeros((10, 10, 3), np.uint8))]
    with pytest.raises(ValueError, match="backend 'numpy' has 0 results for 1 frames"):
        FrameViewer(frames, {"numpy": []})
    with pytest.raises(ValueError, match="needs the results of at least one backend"):
        FrameViewer(frames, {})
    with pytest.raises(ValueError):
        FrameViewer(frames, {"numpy": [Detections.empty()]}, cpp=[[], []])
