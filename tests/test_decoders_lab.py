"""The decoder notebook's logic (mtcnn_lab.lab.decoders): boxes taken back to upright coordinates,
profiles compared (the conclusion's words: tests/test_conclusions.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mtcnn_lab.detections import Detections
from mtcnn_lab.lab.decoders import ProfileRun, compare_profiles_table, to_upright_boxes

TURN_CODES = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def _box_of_mask(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float64)


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
@pytest.mark.parametrize("box", [(10, 20, 30, 40), (0, 0, 5, 7), (50, 3, 19, 60)])
def test_to_upright_boxes_undoes_cv2_rotate(turn, box):
    """Independent of the code: paint the box in an upright 80x120 picture, turn the picture with OpenCV,
    read the box off the turned picture, take it back."""
    upright = np.zeros((120, 80), np.uint8)
    x, y, w, h = box
    upright[y:y + h, x:x + w] = 1
    frame = upright if turn == 0 else cv2.rotate(upright, TURN_CODES[turn])
    seen = _box_of_mask(frame)
    back = to_upright_boxes(seen[None], turn, frame.shape[1], frame.shape[0])
    np.testing.assert_array_equal(back[0], np.array(box, np.float64))


def test_to_upright_boxes_rejects_other_angles():
    with pytest.raises(ValueError, match="0, 90, 180 or 270"):
        to_upright_boxes(np.zeros((1, 4)), 45, 10, 10)


def _detections(boxes) -> Detections:
    n = len(boxes)
    return Detections(boxes=np.asarray(boxes, np.float32).reshape(n, 4), confidences=np.ones(n, np.float32),
                      landmarks=np.zeros((n, 5, 2), np.float32), boxes_pre_correction=np.zeros((n, 4), np.float32),
                      onet_input_boxes=np.zeros((n, 4), np.float32), onet_outputs=np.zeros((n, 16), np.float32))


def _run(name, turn, boxes_per_frame, shape=(120, 80)):
    return ProfileRun(name, {}, tuple(range(len(boxes_per_frame))), tuple(_detections(b) for b in boxes_per_frame),
                      np.zeros((*shape, 3), np.uint8), turn)


def test_compare_profiles_table_counts_and_ious_by_hand():
    base = _run("upright", 0, [[(10, 10, 20, 20)], [(10, 10, 20, 20), (40, 60, 20, 20)]])
    # the same faces, 2 px to the right in frame 0 and one face missed in frame 1
    shifted = _run("shifted", 0, [[(12, 10, 20, 20)], [(10, 10, 20, 20)]])
    # the upright faces seen in a picture turned 180 degrees: the same faces once taken back
    turned = _run("turned", 180, [[(80 - 30, 120 - 30, 20, 20)], [(50, 90, 20, 20), (20, 40, 20, 20)]])
    rows = {r["profile"]: r for r in compare_profiles_table({"upright": base, "shifted": shifted, "turned": turned},
                                                            "upright")}
    assert rows["upright"]["iou_mean"] == 1.0 and rows["upright"]["frames_same_count"] == 2
    s = rows["shifted"]
    assert (s["faces"], s["baseline_faces"], s["frames_same_count"], s["matched"]) == (2, 3, 1, 2)
    assert s["iou_min"] == pytest.approx((18 * 20) / (22 * 20))  # overlap 18x20 over union 22x20, by hand
    assert s["max_px"] == 2.0
    t = rows["turned"]
    assert t["picture"] == "turned 180 cw" and t["matched"] == 3 and t["iou_mean"] == 1.0

