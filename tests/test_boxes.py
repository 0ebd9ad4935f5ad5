"""Box arithmetic against straightforward re-statements of OpenFace's C++ (docs/openface_mtcnn.md §6, §8, §9)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtcnn_lab.cascade.boxes import apply_regression, iou, nms, openface_correction, square_boxes


def multimap_nms(boxes, scores, threshold, mode):
    """OpenFace's loop, written as literally as possible: a list kept sorted like std::multimap."""
    entries = []  # (score, insertion index), ascending by score, equal scores in insertion order
    for i, s in enumerate(scores):
        pos = len(entries)
        while pos > 0 and entries[pos - 1][0] > np.float32(s):
            pos -= 1
        entries.insert(pos, (np.float32(s), i))
    rects = [tuple(int(np.rint(v)) for v in b) for b in boxes]
    picked = []
    while entries:
        _, i = entries.pop()
        picked.append(i)
        x1, y1, w1, h1 = rects[i]
        kept = []
        for score, j in entries:
            x2, y2, w2, h2 = rects[j]
            iw = min(x1 + w1, x2 + w2) - max(x1, x2)
            ih = min(y1 + h1, y2 + h2) - max(y1, y2)
            inter = np.float32(iw * ih if iw > 0 and ih > 0 else 0)
            denom = np.float32(min(w1 * h1, w2 * h2)) if mode == "min" else np.float32(w1 * h1 + w2 * h2) - inter
            overlap = inter / denom if denom else np.float32(np.nan)
            if not overlap > np.float32(threshold):
                kept.append((score, j))
        entries = kept
    return picked


box_lists = st.lists(
    st.tuples(st.integers(-20, 60), st.integers(-20, 60), st.integers(1, 40), st.integers(1, 40),
              st.sampled_from([0.5, 0.6, 0.7, 0.9, 1.0])),  # few distinct scores: many ties
    min_size=0, max_size=30)


@settings(max_examples=300, deadline=None)
@given(box_lists, st.sampled_from([0.5, 0.7]), st.sampled_from(["union", "min"]),
       st.floats(-0.5, 0.5), st.floats(-0.5, 0.5))
def test_nms_matches_openface_loop(items, threshold, mode, fx, fy):
    boxes = np.array([[x + fx, y + fy, w, h] for x, y, w, h, _ in items], np.float32).reshape(-1, 4)
    scores = np.array([s for *_, s in items], np.float32)
    assert nms(boxes, scores, threshold, mode).tolist() == multimap_nms(boxes, scores, threshold, mode)


def test_nms_tie_picks_the_later_box_first():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 10, 10]], np.float32)
    assert nms(boxes, np.array([1.0, 1.0], np.float32), 0.5).tolist() == [1]


def test_nms_keeps_a_box_exactly_at_the_threshold():
    # IoU of these two integer boxes is exactly 0.5 (inter 50, union 100): kept because removal needs > 0.5
    boxes = np.array([[0, 0, 10, 10], [0, 0, 5, 10]], np.float32)
    assert sorted(nms(boxes, np.array([0.9, 0.8], np.float32), 0.5).tolist()) == [0, 1]


def test_nms_rounds_half_to_even():
    # x = 0.5 rounds to 0, x = 1.5 rounds to 2 (cvRound): the boxes then do or don't overlap fully
    a = nms(np.array([[0.5, 0, 4, 4], [0, 0, 4, 4]], np.float32), np.array([0.9, 0.8], np.float32), 0.9)
    b = nms(np.array([[1.5, 0, 4, 4], [0, 0, 4, 4]], np.float32), np.array([0.9, 0.8], np.float32), 0.9)
    assert a.tolist() == [0] and b.tolist() == [0, 1]


def test_square_boxes_truncate_toward_zero():
    squared = square_boxes(np.array([[-3.0, 10.0, 10.0, 17.5], [5.0, 5.0, 20.0, 10.0]], np.float32))
    # first: x = -3 + 0.5 * (10 - 17.5) = -6.75 -> -6, side 17.5 -> 17; second: y = 5 + 0.5 * -10 = 0
    assert squared.tolist() == [[-6, 10, 17, 17], [5, 0, 20, 20]]


def test_apply_regression_add1_only_changes_the_size():
    boxes = np.array([[10, 20, 30, 40]], np.float32)
    reg = np.array([[0.1, -0.1, 0.2, 0.05]], np.float32)
    plain = apply_regression(boxes, reg, add1=False)
    plus = apply_regression(boxes, reg, add1=True)
    np.testing.assert_allclose(plain, [[13, 16, 30 - 3 + 6, 40 + 4 + 2]], rtol=1e-6)
    np.testing.assert_allclose(plus, [[10 + 3.1, 20 - 4.1, 31 - 3.1 + 6.2, 41 + 4.1 + 2.05]], rtol=1e-6)


def test_openface_correction_constants():
    out = openface_correction(np.array([[100, 200, 50, 80]], np.float32))
    np.testing.assert_allclose(out, [[100 - 0.375, 200 + 19.672, 51.615, 62.008]], rtol=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(0.1, 50), st.floats(0.1, 50)),
                min_size=1, max_size=5))
def test_iou_is_symmetric_and_one_on_itself(rows):
    b = np.array(rows)
    m = iou(b, b)
    np.testing.assert_allclose(np.diag(m), 1.0)
    np.testing.assert_allclose(m, m.T)
    assert ((m >= 0) & (m <= 1 + 1e-12)).all()


@pytest.mark.parametrize("mode", ["union", "min"])
@pytest.mark.parametrize("seed", range(6))
def test_nms_picks_what_openfaces_loop_picks_on_many_boxes(mode, seed):
    """Hundreds of boxes with many equal scores (pick order ties) and degenerate sizes."""
    rng = np.random.default_rng(seed)
    n = 600
    boxes = np.column_stack([rng.integers(-20, 200, n), rng.integers(-20, 200, n),
                             rng.integers(0, 60, n), rng.integers(0, 60, n)]).astype(np.float32)
    boxes += rng.choice(np.array([0, 0.5, 0.49, -0.5], np.float32), (n, 4))  # rounding half to even
    scores = rng.choice(np.array([0.6, 0.7, 0.9, 1.0], np.float32), n)
    threshold = [0.3, 0.5, 0.7][seed % 3]
    assert nms(boxes, scores, threshold, mode).tolist() == multimap_nms(boxes, scores, threshold, mode)


# ---------------------------------------------------------------------------------------------
# bit for bit: the float32 and double arithmetic of FaceDetectorMTCNN.cpp, re-stated element by element
# ---------------------------------------------------------------------------------------------

f32 = np.float32
float_boxes = st.lists(st.tuples(st.floats(-100, 500, width=32), st.floats(-100, 500, width=32),
                                 st.floats(1, 300, width=32), st.floats(1, 300, width=32)), min_size=1, max_size=8)
offsets = st.tuples(*[st.floats(-0.5, 0.5, width=32)] * 4)


@settings(max_examples=200, deadline=None)
@given(float_boxes, st.data(), st.booleans())
def test_apply_regression_is_float32_arithmetic_on_integer_rects(rows, data, add1):
    regs = [data.draw(offsets) for _ in rows]
    expected = []
    for (x, y, w, h), (r0, r1, r2, r3) in zip(rows, regs, strict=True):
        # cv::Rect(Rect_<float>): rounded half to even; then float32 maths as in apply_correction
        rx, ry, rw, rh = (int(np.rint(np.float64(f32(v)))) for v in (x, y, w, h))
        if add1:
            rw, rh = rw + 1, rh + 1
        x1 = f32(rx) + f32(r0) * f32(rw)
        y1 = f32(ry) + f32(r1) * f32(rh)
        x2 = f32(rx + rw) + f32(r2) * f32(rw)
        y2 = f32(ry + rh) + f32(r3) * f32(rh)
        expected.append([x1, y1, f32(x2 - x1), f32(y2 - y1)])
    got = apply_regression(np.array(rows, np.float32), np.array(regs, np.float32), add1)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(expected, np.float32))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-100, 500), st.floats(-100, 500), st.floats(1, 300), st.floats(1, 300)),
                min_size=1, max_size=8))
def test_square_boxes_round_to_float32_first(rows):
    """Boxes arrive as float32 (any float input is first stored so), the centring runs in double."""
    expected = []
    for x, y, w, h in rows:
        x, y, w, h = (f32(v) for v in (x, y, w, h))
        side = max(w, h)
        sx = f32(np.float64(x) + 0.5 * np.float64(f32(w - side)))
        sy = f32(np.float64(y) + 0.5 * np.float64(f32(h - side)))
        expected.append([int(np.trunc(sx)), int(np.trunc(sy)), int(np.trunc(side)), int(np.trunc(side))])
    got = square_boxes(np.array(rows, np.float64))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


def test_square_boxes_of_a_float64_value_just_below_an_integer():
    # 0.99999999 is 1.0 once stored as float32 (as the cascade's boxes are): x truncates to 1, not 0
    assert square_boxes(np.array([[0.99999999, 2.0, 10.0, 10.0]]))[0].tolist() == [1, 2, 10, 10]


@settings(max_examples=200, deadline=None)
@given(float_boxes)
def test_openface_correction_is_double_arithmetic_stored_as_float32(rows):
    cx, cy, cw, ch = (-0.0075, 0.2459, 1.0323, 0.7751)
    expected = [[f32(np.float64(w) * cx + np.float64(x)), f32(np.float64(h) * cy + np.float64(y)),
                 f32(cw * np.float64(w)), f32(ch * np.float64(h))] for x, y, w, h in (map(f32, r) for r in rows)]
    got = openface_correction(np.array(rows, np.float32))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(expected, np.float32))


@settings(max_examples=100, deadline=None)
@given(float_boxes, float_boxes)
def test_iou_of_float32_boxes_is_computed_in_double(a_rows, b_rows):
    a, b = np.array(a_rows, np.float32), np.array(b_rows, np.float32)
    expected = np.zeros((len(a), len(b)))
    for i, (ax, ay, aw, ah) in enumerate(a.astype(np.float64)):
        for j, (bx, by, bw, bh) in enumerate(b.astype(np.float64)):
            iw = max(min(ax + aw, bx + bw) - max(ax, bx), 0.0)
            ih = max(min(ay + ah, by + bh) - max(ay, by), 0.0)
            union = aw * ah + bw * bh - iw * ih
            expected[i, j] = iw * ih / union
    got = iou(a, b)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


def test_iou_of_empty_boxes_is_zero_not_nan():
    np.testing.assert_array_equal(iou(np.zeros((1, 4)), np.zeros((2, 4))), [[0.0, 0.0]])


def test_nms_rejects_an_unknown_mode_by_name():
    with pytest.raises(ValueError, match="nms mode must be 'union' or 'min', not 'max'"):
        nms(np.zeros((1, 4), np.float32), np.ones(1, np.float32), 0.5, mode="max")


def test_nms_orders_float64_scores_as_float32():
    """Scores are compared in float32: two float64 scores equal in float32 tie, and the later box wins."""
    boxes = np.array([[0, 0, 10, 10], [50, 50, 10, 10]], np.float32)  # far apart: both kept, in pick order
    assert nms(boxes, np.array([0.70000001, 0.7]), 0.5).tolist() == [1, 0]


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.float32])
def test_nms_takes_any_box_dtype(dtype):
    boxes = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [40, 40, 5, 5]]).astype(dtype)
    assert nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.5).tolist() == [0, 2]


def test_regression_offsets_are_float32_whatever_their_dtype():
    boxes = np.array([[10, 20, 30, 40]], np.float32)
    reg = np.array([[0.1000000001, -0.3333333333, 0.2, 0.0500000001]])
    np.testing.assert_array_equal(apply_regression(boxes, reg, False),
                                  apply_regression(boxes, reg.astype(np.float32), False))
    assert not np.array_equal(apply_regression(boxes, reg, False)[0, 1],
                              np.float32(20 + reg[0, 1] * 40))  # float64 maths would give another float32


def test_correction_of_float64_boxes_stores_them_as_float32_first():
    boxes = np.array([[100.00000001, 200.0000001, 50.000000001, 80.0000000001]])
    np.testing.assert_array_equal(openface_correction(boxes), openface_correction(boxes.astype(np.float32)))
    assert openface_correction(boxes).dtype == np.float32 and openface_correction(boxes).shape == (1, 4)


def test_square_boxes_round_the_centred_corner_to_float32_before_truncating():
    # x + 0.5 (w - side) = 19.99999985 in double, 20.0 once stored as float32 as OpenFace stores it: x = 20
    boxes = np.array([[20.0, 0.0, 3.4517624, 3.4517627]], np.float32)
    assert square_boxes(boxes)[0, 0] == 20
    assert square_boxes(boxes[:, [1, 0, 3, 2]])[0, 1] == 20  # the same for y


def test_correction_rounds_float64_boxes_to_float32_before_the_double_maths():
    rng = np.random.default_rng(3)
    boxes = rng.uniform(0, 500, (500, 4))  # float64 values float32 cannot hold exactly
    np.testing.assert_array_equal(openface_correction(boxes), openface_correction(boxes.astype(np.float32)))
