"""End-to-end comparison tables (notebook 05): box deltas, per-face rows, summaries, paper-style pivots."""

from __future__ import annotations

import numpy as np
import pytest

from mtcnn_lab.cascade.boxes import iou
from mtcnn_lab.detections import Detections
from mtcnn_lab.lab.parity import (
    box_deltas,
    compare_with_cpp,
    format_iou_cell,
    markdown_table,
    per_face_rows,
    pivot_summary,
    summarise_comparisons,
)


def detections(boxes: list[list[float]], confidences: list[float] | None = None) -> Detections:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(b)
    conf = np.asarray(confidences if confidences is not None else [0.95] * n, np.float32)
    return Detections(b, conf, np.zeros((n, 5, 2)), b.copy(), np.zeros((n, 4), np.int64),
                      np.zeros((n, 16), np.float32))


def cpp(boxes: list[list[float]], confidence: float = 0.9) -> list[dict]:
    return [{"bbox": list(map(float, b)), "confidence": confidence, "landmarks": [[0.0, 0.0]] * 5} for b in boxes]


def test_box_deltas_centre_and_size():
    a = np.array([[10, 20, 30, 40], [0, 0, 10, 10]], np.float32)
    b = np.array([[10, 20, 30, 40], [1, 2, 8, 6]], np.float32)
    d = box_deltas(a, b)
    assert d.dtype == np.float64 and d.shape == (2, 4)
    np.testing.assert_array_equal(d[0], 0)
    # centres (5, 5) vs (5, 5): a box that grows symmetrically has no centre offset
    np.testing.assert_allclose(d[1], [0, 0, 2, 4])
    np.testing.assert_allclose(box_deltas([3, 4, 10, 10], [0, 0, 10, 10]), [[3, 4, 0, 0]])
    with pytest.raises(ValueError, match="box_deltas needs as many boxes on both sides, got 2 and 1"):
        box_deltas(a, b[:1])


def test_compare_with_cpp_pairs_across_order_and_reports_unmatched():
    ours = detections([[100, 40, 36, 36], [10, 30, 30, 30], [300, 300, 50, 50]], [0.8, 0.9, 0.7])
    ref = cpp([[10, 31, 30, 28], [101, 41, 35, 36], [500, 10, 40, 40]])
    c = compare_with_cpp("img.png", ours, ref, backend="numpy", group="video")
    assert (c["cpp_faces"], c["python_faces"], c["matched"]) == (3, 3, 2)
    assert c["same_count"] and not c["agree"]
    rows = c["faces"]
    assert [(r["cpp_face"], r["python_face"], r["matched"]) for r in rows] == [
        (0, 1, True), (1, 0, True), (2, None, False), (None, 2, False)]
    expected = iou(np.float32([[10, 30, 30, 30]]), np.float32([[10, 31, 30, 28]]))[0, 0]
    assert rows[0]["iou"] == pytest.approx(expected) and rows[0]["one_minus_iou"] == pytest.approx(1 - expected)
    # Python minus C++: centre (25, 45) vs (25, 45), size 30x30 vs 30x28
    assert (rows[0]["dx"], rows[0]["dy"], rows[0]["dw"], rows[0]["dh"]) == pytest.approx((0, 0, 0, 2))
    assert (rows[1]["dx"], rows[1]["dy"], rows[1]["dw"], rows[1]["dh"]) == pytest.approx((-0.5, -1, 1, 0))
    assert rows[1]["python_confidence"] == pytest.approx(0.8) and rows[1]["cpp_confidence"] == 0.9
    assert rows[2]["iou"] is None and rows[2]["dx"] is None and rows[2]["python_bbox"] is None
    assert rows[3]["cpp_bbox"] is None and rows[3]["python_bbox"] == [300, 300, 50, 50]
    assert all(r["backend"] == "numpy" and r["group"] == "video" and r["image"] == "img.png" for r in rows)


def test_compare_with_cpp_empty_and_missing_reference():
    none = compare_with_cpp("a", Detections.empty(), [])
    assert none["agree"] and none["faces"] == [] and none["matched"] == 0
    no_ref = compare_with_cpp("b", detections([[0, 0, 10, 10]]), None)
    assert no_ref["cpp_faces"] == 0 and not no_ref["agree"] and len(no_ref["faces"]) == 1
    identical = compare_with_cpp("c", detections([[5, 5, 20, 20]]), cpp([[5, 5, 20, 20]]))
    assert identical["agree"] and identical["faces"][0]["iou"] == 1.0 and identical["faces"][0]["dw"] == 0.0


@pytest.fixture()
def comparisons() -> list[dict]:
    out = []
    for backend, shift in (("numpy", 0.0), ("fp16", 0.5)):
        out.append(compare_with_cpp("v#1", detections([[10 + shift, 10, 40, 40]]), cpp([[10, 10, 40, 40]]),
                                    backend=backend, group="v"))
        out.append(compare_with_cpp("v#2", detections([[50, 50, 40, 40 + shift]]), cpp([[50, 50, 40, 40]]),
                                    backend=backend, group="v"))
        out.append(compare_with_cpp("s.jpg", detections([[0, 0, 20, 20], [60, 60, 20, 20]]),
                                    cpp([[0, 0, 20, 20]]), backend=backend, group="stills"))
    return out


def test_summarise_by_backend(comparisons):
    rows = summarise_comparisons(comparisons)
    assert [r["backend"] for r in rows] == ["numpy", "fp16"]
    numpy_row, fp16 = rows
    assert (numpy_row["images"], numpy_row["images_same_count"], numpy_row["images_agree"]) == (3, 2, 2)
    assert (numpy_row["faces_cpp"], numpy_row["faces_python"], numpy_row["matched"]) == (3, 4, 3)
    assert numpy_row["iou_mean"] == numpy_row["iou_min"] == 1.0 and numpy_row["exact"] == 3
    assert numpy_row["one_minus_iou_max"] == 0.0 and numpy_row["dx_max_abs"] == 0.0
    ious = [f["iou"] for f in per_face_rows(comparisons) if f["backend"] == "fp16" and f["matched"]]
    assert fp16["iou_mean"] == pytest.approx(np.mean(ious)) and fp16["iou_median"] == pytest.approx(np.median(ious))
    assert fp16["iou_min"] == pytest.approx(min(ious)) and fp16["share_iou_above_0.99"] == pytest.approx(1 / 3)
    assert fp16["exact"] == 1
    # face 1 shifted by 0.5 px in x: |dx| 0.5; face 2 taller by 0.5: dy 0.25 (centre), dh 0.5
    assert fp16["dx_max_abs"] == pytest.approx(0.5) and fp16["dx_mean_abs"] == pytest.approx(0.5 / 3)
    assert fp16["dy_max_abs"] == pytest.approx(0.25) and fp16["dh_max_abs"] == pytest.approx(0.5)
    assert fp16["dw_max_abs"] == 0.0
    assert fp16["centre_max_abs"] == pytest.approx(0.5) and fp16["size_max_abs"] == pytest.approx(0.5)
    assert numpy_row["centre_max_abs"] == numpy_row["size_max_abs"] == 0.0


def test_summarise_without_matches_gives_none():
    rows = summarise_comparisons([compare_with_cpp("x", detections([[0, 0, 10, 10]]), cpp([[100, 100, 10, 10]]))])
    assert rows[0]["matched"] == 0 and rows[0]["iou_mean"] is None and rows[0]["dx_max_abs"] is None
    assert rows[0]["centre_max_abs"] is None and rows[0]["size_max_abs"] is None
    assert rows[0]["exact"] == 0 and format_iou_cell(rows[0]) == "no match (0/1)"


def test_per_group_pivot_and_markdown(comparisons):
    summary = summarise_comparisons(comparisons, by=("group", "backend"))
    assert [(r["group"], r["backend"]) for r in summary] == [("v", "numpy"), ("stills", "numpy"), ("v", "fp16"),
                                                              ("stills", "fp16")]
    wide = pivot_summary(summary)
    assert [r["group"] for r in wide] == ["v", "stills"]
    assert wide[0]["images"] == 2 and wide[0]["faces_cpp"] == 2
    assert wide[0]["numpy iou_mean"] == 1.0 and wide[0]["numpy images_agree"] == 2
    assert wide[1]["fp16 images_agree"] == 0 and wide[1]["fp16 iou_min"] == 1.0
    assert wide[0]["fp16 iou_min"] == pytest.approx(summary[2]["iou_min"]) and summary[2]["iou_min"] < 1
    assert list(wide[0]) == ["group", "images", "faces_cpp", "numpy iou_mean", "numpy iou_min", "numpy images_agree",
                             "fp16 iou_mean", "fp16 iou_min", "fp16 images_agree"]
    partial = pivot_summary(summary[:3])  # stills has no fp16 row
    assert partial[1]["fp16 iou_mean"] is None

    text = markdown_table(summary)
    lines = text.splitlines()
    assert lines[0] == "| group | numpy | fp16 |" and lines[1] == "|---|---|---|"
    assert lines[2].startswith("| v | 1.000000 / 1.000000 (2/2) | ")
    assert lines[3] == "| stills | 1.000000 / 1.000000 (0/1) | 1.000000 / 1.000000 (0/1) |"
    assert "–" in markdown_table(summary[:3])
    assert format_iou_cell(summary[2], 3).endswith("(2/2)")
